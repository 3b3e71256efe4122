/**
 * What the runner tells the attacker program and what the program answers, as JSON: the spec on
 * standard input, one observation line on standard output. The spec holds the action, its
 * parameters and paths inside the attacker's own data directory; it never names the victim's.
 */
import type { ActionName, ArtifactKind, Params } from '../model.ts';

export interface AttackerSpec {
  readonly action: ActionName;
  readonly with: Params;
  readonly artifactKind: ArtifactKind;
  /** The stolen artifact, copied into the attacker's data directory. */
  readonly artifact: string;
  /** The cloud's public base URL (https://host:port). */
  readonly cloudUrl: string;
  /** The tenant's domain (public: it is in every user name). */
  readonly tenant: string;
  /** The lab CA certificate (PEM file), as a real attacker trusts public TLS. */
  readonly caPath: string;
  /** The attacker's own data directory. */
  readonly dataDir: string;
}

/** One request the attacker sent and what the cloud answered. */
export interface RequestRecord {
  readonly what: string;
  readonly status: number;
  readonly error?: string;
  readonly aadsts?: number;
  readonly correlationId?: string;
}

/** A token or secret as reports may show it: its kind and a truncated SHA-256 fingerprint. */
export interface TokenFacts {
  readonly kind: string;
  readonly fingerprint: string;
  readonly deviceBound?: boolean;
}

export interface Observation {
  /** Every request sent, in order. */
  readonly requests: RequestRecord[];
  /** The request the outcome rests on (index into `requests`); absent when none was sent. */
  readonly decisive?: number;
  /** What the artifact held. */
  readonly stolen?: TokenFacts;
  /** What the attacker obtained, if anything. */
  readonly got?: TokenFacts;
  /** The artifact did not work on the attacker's host: the error's code and message. */
  readonly localError?: { readonly code: string; readonly message: string };
}

/** Checks the observation line the attacker printed (the runner trusts nothing else). */
export function parseObservation(line: string): Observation {
  const o = JSON.parse(line) as Partial<Observation>;
  if (typeof o !== 'object' || o === null || !Array.isArray(o.requests))
    throw new TypeError('not an observation');
  for (const r of o.requests) {
    if (typeof r?.what !== 'string' || typeof r.status !== 'number')
      throw new TypeError('not an observation: bad request record');
  }
  if (o.decisive !== undefined && (typeof o.decisive !== 'number' || !o.requests[o.decisive]))
    throw new TypeError('not an observation: bad decisive index');
  return o as Observation;
}
