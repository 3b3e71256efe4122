/**
 * The run's report in four formats: `table` for a terminal, `json` (the AttackRun as it is),
 * `md` and `html` (one self-contained file: inline CSS, no scripts, every value escaped). Each
 * shows, per scenario, replay or case and policy state, the expectation beside the observation
 * with its evidence (HTTP status, AADSTS code, the sign-in log entry's policy result and
 * tokenProtectionStatusDetails), the reasons the scenario gives, and marks every difference.
 *
 * Reports hold no token or secret: artifacts and tokens appear by kind and a truncated SHA-256
 * fingerprint (fingerprint.ts).
 */
import type { TokenFacts } from './attacker/protocol.ts';
import type { Expectation, TenantSettings } from './model.ts';
import type { AttackRun, Row } from './runner.ts';

export const REPORT_FORMATS = ['table', 'json', 'md', 'html'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export function formatReport(run: AttackRun, format: ReportFormat): string {
  switch (format) {
    case 'table':
      return tableReport(run);
    case 'json':
      return `${JSON.stringify(run, null, 2)}\n`;
    case 'md':
      return markdownReport(run);
    case 'html':
      return htmlReport(run);
  }
}

function blockCode(edition: string): string {
  return edition === '2025-ga'
    ? '530084'
    : edition === '2023-preview'
      ? '53003'
      : '53003 or 530084';
}

function headline(run: AttackRun): string {
  const scenarios = run.scenarios.length;
  return `${scenarios} scenario${scenarios === 1 ? '' : 's'}, policy states ${run.states.join(', ')}; catalog edition ${run.edition} (a token-protection block is AADSTS${blockCode(run.edition)})`;
}

function verdict(run: AttackRun): string {
  const bad = run.rows.filter((r) => r.differences.length > 0).length;
  return bad === 0
    ? `All ${run.rows.length} observations as expected.`
    : `${bad} of ${run.rows.length} observations differ from their expectation.`;
}

export function expectedText(e: Expectation): string {
  return e.aadsts !== undefined ? `${e.outcome} ${e.aadsts}` : e.outcome;
}

export function observedText(r: Row): string {
  const o = r.observed;
  if (o.harnessError !== undefined) return 'error';
  if (o.localError) return `${o.outcome} (${o.localError.code})`;
  return o.aadsts !== undefined ? `${o.outcome} ${o.aadsts}` : o.outcome;
}

function facts(t: TokenFacts | undefined): string {
  if (!t) return '-';
  const bound =
    t.deviceBound === undefined ? '' : t.deviceBound ? ', device-bound' : ', not device-bound';
  return t.fingerprint ? `${t.kind}${bound} (sha256 ${t.fingerprint}…)` : `${t.kind}${bound}`;
}

/**
 * The rows for reading: by scenario, then replay or case, then policy state (the run produces
 * them state by state, since every state runs the whole scenario).
 */
export function orderedRows(run: AttackRun): Row[] {
  const scenarioIndex = new Map(run.scenarios.map((s, i) => [s.id, i]));
  const itemIndex = new Map<string, number>();
  for (const r of run.rows) {
    const key = `${r.scenario.id}/${r.item.id}`;
    if (!itemIndex.has(key)) itemIndex.set(key, itemIndex.size);
  }
  const stateIndex = (r: Row) => run.states.indexOf(r.state);
  return [...run.rows].sort(
    (a, b) =>
      (scenarioIndex.get(a.scenario.id) ?? 0) - (scenarioIndex.get(b.scenario.id) ?? 0) ||
      (itemIndex.get(`${a.scenario.id}/${a.item.id}`) ?? 0) -
        (itemIndex.get(`${b.scenario.id}/${b.item.id}`) ?? 0) ||
      stateIndex(a) - stateIndex(b),
  );
}

function itemLabel(r: Row): string {
  return `${r.scenario.id} / ${r.item.id}`;
}

// ---- table -------------------------------------------------------------------------------------

function columns(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function tableReport(run: AttackRun): string {
  const header = [
    '#',
    'SCENARIO / REPLAY',
    'STATE',
    'EXPECTED',
    'OBSERVED',
    'HTTP',
    'POLICY RESULT',
    'TOKEN PROTECTION',
    '',
  ];
  const rows = orderedRows(run).map((r) => [
    String(r.scenario.number),
    itemLabel(r),
    r.state,
    expectedText(r.expected),
    observedText(r),
    r.observed.status !== undefined ? String(r.observed.status) : '-',
    r.observed.signIn.result,
    r.observed.signIn.tokenProtection,
    r.differences.length === 0 ? 'ok' : 'DIFFERS',
  ]);
  const out = [`prtlab attack run: ${headline(run)}`, '', columns(header, rows), ''];
  const bad = orderedRows(run).filter((r) => r.differences.length > 0);
  if (bad.length > 0) {
    out.push('Differences:');
    for (const r of bad)
      out.push(`  ${r.scenario.number} ${itemLabel(r)} [${r.state}]: ${r.differences.join('; ')}`);
    out.push('');
  }
  out.push(verdict(run));
  return `${out.join('\n')}\n`;
}

// ---- markdown ----------------------------------------------------------------------------------

function mdCell(text: string): string {
  return text
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/[\r\n]+/g, ' ')
    .replace(/[<>]/g, (c) => (c === '<' ? '&lt;' : '&gt;'));
}

/** Rows grouped by scenario, in run order. */
function byScenario(run: AttackRun): { scenario: AttackRun['scenarios'][number]; rows: Row[] }[] {
  const rows = orderedRows(run);
  return run.scenarios.map((scenario) => ({
    scenario,
    rows: rows.filter((r) => r.scenario.id === scenario.id),
  }));
}

/** One line per replay or case, one cell per state: the overview at the top of md and html. */
function matrix(run: AttackRun): { label: string; cells: (Row | undefined)[] }[] {
  const lines: { label: string; cells: (Row | undefined)[] }[] = [];
  for (const r of orderedRows(run)) {
    const label = `${r.scenario.number}. ${itemLabel(r)}`;
    let line = lines.at(-1);
    if (line?.label !== label) {
      line = { label, cells: run.states.map(() => undefined) };
      lines.push(line);
    }
    line.cells[run.states.indexOf(r.state)] = r;
  }
  return lines;
}

function cellText(r: Row | undefined): string {
  if (!r) return '-';
  return r.differences.length === 0
    ? observedText(r)
    : `${observedText(r)} (expected ${expectedText(r.expected)})`;
}

function tenantText(settings: TenantSettings | undefined): string {
  const set = Object.entries(settings ?? {}).filter(([, on]) => on !== undefined);
  if (set.length === 0) return '';
  return `; tenant setting ${set.map(([name, on]) => `${name} ${on ? 'on' : 'off'}`).join(', ')} for this replay`;
}

function contextLine(r: Row): string {
  const c = r.context;
  if (c.artifact)
    return `stolen ${c.artifact.kind} (${c.artifact.where}); attacker action ${c.action} on the ${c.runsOn === 'victim-device' ? "victim's device (malware)" : "attacker's own host"}${tenantText(c.tenant)}`;
  return `client ${c.client} ${c.version} on a ${c.device} device, user ${c.user}`;
}

function evidenceText(r: Row): string {
  const o = r.observed;
  if (o.harnessError !== undefined) return `harness error: ${o.harnessError}`;
  const parts: string[] = [];
  if (o.localError)
    parts.push(`on the attacker's host: ${o.localError.code}: ${o.localError.message}`);
  if (o.status !== undefined)
    parts.push(
      `HTTP ${o.status}${o.error ? ` ${o.error}` : ''}${o.aadsts !== undefined ? ` AADSTS${o.aadsts}` : ''}`,
    );
  if (o.correlationId) parts.push(`correlation id ${o.correlationId}`);
  const s = o.signIn;
  if (s.result !== 'noSignIn') {
    parts.push(
      `sign-in log: policy ${s.result}, conditionalAccessStatus ${s.conditionalAccessStatus ?? '-'}, tokenProtectionStatusDetails ${s.tokenProtection}` +
        `${s.deviceId ? `, device ${s.deviceId} (${s.trustType ?? '?'})` : ', no device'}` +
        `${s.appDisplayName ? `, app ${s.appDisplayName}` : ''}`,
    );
  } else parts.push('no sign-in log entry');
  if (o.stolen) parts.push(`stolen: ${facts(o.stolen)}`);
  if (o.got) parts.push(`got: ${facts(o.got)}`);
  return parts.join('; ');
}

function markdownReport(run: AttackRun): string {
  const out: string[] = [
    '# prtlab attack report',
    '',
    `${headline(run)}. Run ${run.startedAt} to ${run.finishedAt}.`,
    '',
    `**${verdict(run)}**`,
    '',
    '## Matrix',
    '',
    `| scenario / replay | ${run.states.join(' | ')} |`,
    `| --- |${run.states.map(() => ' --- |').join('')}`,
    ...matrix(run).map(
      (m) =>
        `| ${mdCell(m.label)} | ${m.cells
          .map((c) =>
            c && c.differences.length > 0 ? `**${mdCell(cellText(c))}**` : mdCell(cellText(c)),
          )
          .join(' | ')} |`,
    ),
    '',
  ];
  for (const { scenario, rows } of byScenario(run)) {
    out.push(`## ${scenario.number}. ${mdCell(scenario.title)}`, '', mdCell(scenario.summary), '');
    out.push(
      '| replay | state | expected | observed | HTTP | policy result | token protection | |',
    );
    out.push('| --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const r of rows) {
      const differs = r.differences.length > 0;
      out.push(
        `| ${mdCell(r.item.id)} | ${r.state} | ${mdCell(expectedText(r.expected))} | ${differs ? '**' : ''}${mdCell(observedText(r))}${differs ? '**' : ''} | ${r.observed.status ?? '-'} | ${r.observed.signIn.result} | ${r.observed.signIn.tokenProtection} | ${differs ? '**DIFFERS**' : 'ok'} |`,
      );
    }
    out.push('');
    for (const id of [...new Set(rows.map((r) => r.item.id))]) {
      const first = rows.find((r) => r.item.id === id)!;
      out.push(
        `### ${mdCell(id)}: ${mdCell(first.item.title)}`,
        '',
        mdCell(contextLine(first)),
        '',
      );
      for (const r of rows.filter((x) => x.item.id === id)) {
        out.push(
          `- **${r.state}**: expected ${mdCell(expectedText(r.expected))}. ${mdCell(r.expected.why)}`,
        );
        out.push(`  - observed: ${mdCell(evidenceText(r))}`);
        for (const d of r.differences) out.push(`  - **DIFFERS**: ${mdCell(d)}`);
      }
      out.push('');
    }
  }
  return `${out.join('\n')}\n`;
}

// ---- html --------------------------------------------------------------------------------------

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const CSS = `
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:78rem;padding:0 1rem;color:#1d232a;background:#fff}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2.4rem;border-bottom:1px solid #d6dbe1;padding-bottom:.3rem}
h3{font-size:1rem;margin:1.4rem 0 .3rem}p.meta{color:#56606b;margin-top:0}
.verdict{padding:.6rem .9rem;border-radius:6px;font-weight:600}.verdict.ok{background:#e3f4e6;color:#185c26}.verdict.bad{background:#fbe4e4;color:#8a1c1c}
table{border-collapse:collapse;width:100%;margin:.6rem 0;font-size:.9rem}th,td{border:1px solid #d6dbe1;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f5f7}tr.differs td,td.differs{background:#fbe4e4}td.mark{font-weight:600}tr.differs td.mark{color:#8a1c1c}
.o-allowed{color:#185c26}.o-blocked{color:#8a4b00}.o-refused,.o-unusable{color:#1b4f8a}.o-error{color:#8a1c1c;font-weight:600}
ul.why{margin:.2rem 0 .8rem;padding-left:1.2rem}ul.why li{margin:.25rem 0}.ev{color:#56606b;font-size:.88rem}.diff{color:#8a1c1c;font-weight:600}
code{font-size:.9em;background:#f3f5f7;padding:0 .2rem;border-radius:3px}
`;

function htmlOutcome(text: string, outcome: string): string {
  return `<span class="o-${escapeHtml(outcome)}">${escapeHtml(text)}</span>`;
}

function htmlReport(run: AttackRun): string {
  const ok = run.rows.every((r) => r.differences.length === 0);
  const parts: string[] = [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<title>prtlab attack report</title>',
    `<style>${CSS}</style></head><body>`,
    '<h1>prtlab attack report</h1>',
    `<p class="meta">${escapeHtml(headline(run))}. Run ${escapeHtml(run.startedAt)} to ${escapeHtml(run.finishedAt)}.</p>`,
    `<p class="verdict ${ok ? 'ok' : 'bad'}">${escapeHtml(verdict(run))}</p>`,
    '<h2>Matrix</h2>',
    `<table class="matrix"><thead><tr><th>scenario / replay</th>${run.states.map((st) => `<th>${st}</th>`).join('')}</tr></thead><tbody>`,
    ...matrix(run).map(
      (m) =>
        `<tr><td>${escapeHtml(m.label)}</td>${m.cells
          .map((c) =>
            c
              ? `<td${c.differences.length > 0 ? ' class="differs"' : ''}>${htmlOutcome(cellText(c), c.observed.outcome)}</td>`
              : '<td>-</td>',
          )
          .join('')}</tr>`,
    ),
    '</tbody></table>',
  ];
  for (const { scenario, rows } of byScenario(run)) {
    parts.push(
      `<h2 id="s-${escapeHtml(scenario.id)}">${scenario.number}. ${escapeHtml(scenario.title)}</h2>`,
      `<p>${escapeHtml(scenario.summary)}</p>`,
      '<table><thead><tr><th>replay</th><th>state</th><th>expected</th><th>observed</th><th>HTTP</th><th>policy result</th><th>token protection</th><th></th></tr></thead><tbody>',
    );
    for (const r of rows) {
      const differs = r.differences.length > 0;
      parts.push(
        `<tr${differs ? ' class="differs"' : ''}><td>${escapeHtml(r.item.id)}</td><td>${r.state}</td>` +
          `<td>${htmlOutcome(expectedText(r.expected), r.expected.outcome)}</td>` +
          `<td>${htmlOutcome(observedText(r), r.observed.outcome)}</td>` +
          `<td>${r.observed.status ?? '-'}</td><td>${escapeHtml(r.observed.signIn.result)}</td>` +
          `<td>${escapeHtml(r.observed.signIn.tokenProtection)}</td><td class="mark">${differs ? 'DIFFERS' : 'ok'}</td></tr>`,
      );
    }
    parts.push('</tbody></table>');
    for (const id of [...new Set(rows.map((r) => r.item.id))]) {
      const first = rows.find((r) => r.item.id === id)!;
      parts.push(
        `<h3>${escapeHtml(id)}: ${escapeHtml(first.item.title)}</h3>`,
        `<p class="ev">${escapeHtml(contextLine(first))}</p>`,
        '<ul class="why">',
      );
      for (const r of rows.filter((x) => x.item.id === id)) {
        parts.push(
          `<li><strong>${r.state}</strong>: expected ${escapeHtml(expectedText(r.expected))}. ${escapeHtml(r.expected.why)}` +
            `<br><span class="ev">observed: ${escapeHtml(evidenceText(r))}</span>` +
            r.differences
              .map((d) => `<br><span class="diff">DIFFERS: ${escapeHtml(d)}</span>`)
              .join('') +
            '</li>',
        );
      }
      parts.push('</ul>');
    }
  }
  parts.push('</body></html>', '');
  return parts.join('\n');
}
