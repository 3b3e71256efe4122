/** Identifier syntax the cloud checks: GUIDs (stored lowercase) and DNS names (domains). */
import { randomUUID } from 'node:crypto';

const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DNS_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;
const MAX_DNS_NAME = 253;

export function isGuid(value: unknown): value is string {
  return typeof value === 'string' && GUID_RE.test(value);
}

/** The canonical (lowercase) form of a GUID, or undefined if `value` is not one. */
export function normalizeGuid(value: string): string | undefined {
  return isGuid(value) ? value.toLowerCase() : undefined;
}

/** A new random (version 4) GUID in canonical form. */
export function newGuid(): string {
  return randomUUID();
}

/**
 * A DNS name with at least two labels (`contoso.test`): letters, digits and inner hyphens, each
 * label 1-63 characters, at most 253 in all. A single label is not a domain a tenant can own.
 */
export function isDnsName(value: unknown): value is string {
  if (typeof value !== 'string' || value.length > MAX_DNS_NAME) return false;
  const labels = value.split('.');
  return labels.length >= 2 && labels.every((l) => DNS_LABEL.test(l));
}
