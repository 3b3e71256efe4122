/**
 * The attack report's four formats (attacks/report.ts), from a run made up here: expected beside
 * observed with the evidence, differences marked, every value escaped, rows in reading order.
 */
import { describe, expect, it } from 'vitest';
import { type Observed, signInEvidence } from '../../attacks/evidence.ts';
import type { Expectation } from '../../attacks/model.ts';
import { escapeHtml, formatReport, orderedRows } from '../../attacks/report.ts';
import type { AttackRun, Row } from '../../attacks/runner.ts';
import type { SignInEntry } from '../../cloud/signins/entry.ts';

const BLOCKED: Expectation = {
  outcome: 'blocked',
  aadsts: 53003,
  signInResult: 'failure',
  tokenProtection: 'unbound 1002',
  why: 'Unbound <b>refresh</b> token | no device',
};

function row(
  state: Row['state'],
  item: string,
  observed: Partial<Observed>,
  diff: string[] = [],
): Row {
  return {
    scenario: { number: 1, id: 'cli-refresh-token', title: 'A <script>alert(1)</script> title' },
    item: { id: item, title: 'redeemed off-device' },
    state,
    context: {
      action: 'redeem-refresh-token',
      runsOn: 'attacker-host',
      artifact: {
        name: 'rt',
        kind: 'token-cache-file',
        from: 'client-token-cache',
        where: 'a file',
      },
    },
    expected: BLOCKED,
    observed: {
      outcome: 'blocked',
      status: 400,
      aadsts: 53003,
      error: 'invalid_grant',
      correlationId: '3a5c1a74-cd52-4da9-803c-463c93f6cdd5',
      signIn: { result: 'failure', tokenProtection: 'unbound 1002' },
      requests: [],
      stolen: { kind: 'refresh token', fingerprint: '8bbb956ec424' },
      ...observed,
    },
    differences: diff,
  };
}

function run(rows: Row[]): AttackRun {
  return {
    startedAt: '2026-11-27T10:00:00.000Z',
    finishedAt: '2026-11-27T10:00:30.000Z',
    states: ['off', 'reportOnly', 'on'],
    edition: '2023-preview',
    scenarios: [
      {
        number: 1,
        id: 'cli-refresh-token',
        title: 'A <script>alert(1)</script> title',
        summary: 'Summary & more',
        kind: 'attack',
      },
    ],
    rows,
    ok: rows.every((r) => r.differences.length === 0),
  };
}

const MATCHING = run([row('on', 'b', {}), row('off', 'a', {}), row('on', 'a', {})]);
const DIFFERING = run([
  row('on', 'a', { outcome: 'allowed', status: 200, aadsts: undefined, error: undefined }, [
    'outcome: expected blocked, observed allowed',
  ]),
]);

describe('the attack report', () => {
  it('orders rows by scenario, replay, then state', () => {
    expect(orderedRows(MATCHING).map((r) => `${r.item.id}/${r.state}`)).toEqual([
      'b/on',
      'a/off',
      'a/on',
    ]);
  });

  it('as a table puts expected beside observed with the evidence, and says all is as expected', () => {
    const text = formatReport(MATCHING, 'table');
    expect(text).toMatch(
      /catalog edition 2023-preview \(a token-protection block is AADSTS53003\)/,
    );
    expect(text).toMatch(
      /1 +cli-refresh-token \/ a +on +blocked 53003 +blocked 53003 +400 +failure +unbound 1002 +ok/,
    );
    expect(text.trimEnd().endsWith('All 3 observations as expected.')).toBe(true);
  });

  it('as a table lists each difference and counts them', () => {
    const text = formatReport(DIFFERING, 'table');
    expect(text).toMatch(/blocked 53003 +allowed +200 .* DIFFERS/);
    expect(text).toContain(
      'Differences:\n  1 cli-refresh-token / a [on]: outcome: expected blocked, observed allowed',
    );
    expect(text.trimEnd().endsWith('1 of 1 observations differ from their expectation.')).toBe(
      true,
    );
  });

  it('as JSON is the run itself', () => {
    expect(JSON.parse(formatReport(DIFFERING, 'json'))).toEqual(
      JSON.parse(JSON.stringify(DIFFERING)),
    );
  });

  it('names the tenant settings a replay ran with, and none for a replay that set none', () => {
    const plain = row('on', 'a', {});
    const attested: Row = {
      ...row('on', 'b', { outcome: 'refused', status: 403, aadsts: 9990220 }),
      context: { ...plain.context, tenant: { requireAttestation: true } },
    };
    for (const format of ['md', 'html'] as const) {
      const text = formatReport(run([plain, attested]), format);
      expect(
        text.match(/tenant setting requireAttestation on for this replay/g),
        format,
      ).toHaveLength(1);
    }
    const off: Row = {
      ...attested,
      context: { ...plain.context, tenant: { requireAttestation: false } },
    };
    expect(formatReport(run([off]), 'md')).toContain(
      'tenant setting requireAttestation off for this replay',
    );
  });

  it('as Markdown escapes table cells and marks differences in bold', () => {
    const text = formatReport(DIFFERING, 'md');
    expect(text).toContain(
      '| 1. cli-refresh-token / a | - | - | **allowed (expected blocked 53003)** |',
    );
    expect(text).toContain('Unbound &lt;b&gt;refresh&lt;/b&gt; token \\| no device');
    expect(text).toContain('  - **DIFFERS**: outcome: expected blocked, observed allowed');
    expect(text).not.toContain('<script>');
  });

  it('as HTML is one self-contained page: inline CSS, no script, every value escaped', () => {
    const page = formatReport(DIFFERING, 'html');
    expect(page.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(page).toContain('<style>');
    expect(page).not.toMatch(/<script|<link|src=|https?:\/\//);
    expect(page).toContain('A &#60;script&#62;alert(1)&#60;/script&#62; title');
    expect(page).toContain('Summary &#38; more');
    expect(page).toContain('<tr class="differs">');
    expect(page).toContain('<p class="verdict bad">1 of 1 observations differ');
  });

  it('shows tokens by kind and fingerprint only', () => {
    const page = formatReport(MATCHING, 'md');
    expect(page).toContain('stolen: refresh token (sha256 8bbb956ec424…)');
  });

  it('escapes the five HTML-special characters', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe(
      '&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;',
    );
  });
});

describe('the sign-in evidence of a row', () => {
  it('reads the policy result and token protection from the log entry, by policy id', () => {
    const entry = {
      appliedConditionalAccessPolicies: [
        { id: 'other', result: 'success' },
        { id: 'tp', result: 'reportOnlyFailure' },
      ],
      tokenProtectionStatusDetails: {
        signInSessionStatus: 'unbound',
        signInSessionStatusCode: 1008,
      },
      conditionalAccessStatus: 'notApplied',
      status: { errorCode: 0 },
      userPrincipalName: 'adele@contoso.test',
      appDisplayName: 'Power BI Desktop',
      resourceDisplayName: 'Office 365 SharePoint Online',
      deviceDetail: { deviceId: 'd1', trustType: 'Azure AD joined' },
      correlationId: 'c1',
    };
    // A partial log entry is enough here.
    const asEntry = (e: object) => e as unknown as SignInEntry;
    const ev = signInEvidence(asEntry(entry), 'tp');
    expect(ev).toMatchObject({
      result: 'reportOnlyFailure',
      tokenProtection: 'unbound 1008',
      deviceId: 'd1',
    });
    expect(
      signInEvidence(asEntry({ ...entry, appliedConditionalAccessPolicies: [] }), 'tp').result,
    ).toBe('notEvaluated');
    expect(signInEvidence(undefined, 'tp').result).toBe('noSignIn');
  });
});
