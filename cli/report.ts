/** `prtlab report impact`: the token-protection impact of the sign-in log (cloud/signins/impact.ts). */
import { join } from 'node:path';
import { ensureCloudDirs, resolveDataDir } from '../cloud/data-dir.ts';
import type { SignInEntry } from '../cloud/signins/entry.ts';
import { type ImpactReport, impactReport, parseDuration } from '../cloud/signins/impact.ts';
import { SIGNINS_DB_NAME, SignInStore } from '../cloud/signins/store.ts';
import { parseSubcommand, table } from './cloud-data.ts';
import { type Io, usageError } from './io.ts';
import { REPORT_HELP } from './usage.ts';

/** Every sign-in at or after `since`, oldest first. */
function readLog(store: SignInStore, since: Date): SignInEntry[] {
  const filter = `createdDateTime ge ${since.toISOString()}`;
  const all: SignInEntry[] = [];
  let offset: number | undefined = 0;
  while (offset !== undefined) {
    const page = store.list({ filter, orderBy: 'createdDateTime asc', top: 1000, offset });
    all.push(...page.value);
    offset = page.nextOffset;
  }
  return all;
}

function pct(n: number): string {
  return `${n.toFixed(2)}%`;
}

function printReport(io: Io, r: ImpactReport): void {
  const scope = r.policyId === undefined ? 'token-protection policies' : `policy ${r.policyId}`;
  io.out(`Impact of ${scope} since ${r.since} (${r.scanned} sign-ins scanned)\n\n`);
  if (r.apps.length === 0) {
    io.out('No sign-ins matched.\n');
    return;
  }
  table(
    io,
    ['APP', 'REQUESTS', 'USERS', 'BLOCK', 'ALLOW', 'BLOCKED USERS', 'ALLOWED'],
    r.apps.map((a) => [
      a.app,
      String(a.requests),
      String(a.users),
      String(a.block),
      String(a.allow),
      String(a.blockedUsers),
      pct(a.pctAllowed),
    ]),
  );
  io.out('\n');
  table(
    io,
    ['USER', 'APP', 'RESOURCE', 'REQUESTS', 'BLOCK', 'ALLOW', 'ALLOWED'],
    r.users.map((u) => [
      u.user,
      u.app,
      u.resource,
      String(u.requests),
      String(u.block),
      String(u.allow),
      pct(u.pctAllowed),
    ]),
  );
}

export async function reportCommand(argv: string[], io: Io): Promise<number> {
  const parsed = parseSubcommand(
    argv,
    {
      policy: { type: 'string' },
      since: { type: 'string', default: '7d' },
      json: { type: 'boolean', default: false },
    },
    REPORT_HELP,
    io,
  );
  if (typeof parsed === 'number') return parsed;
  const { sub, values, positionals } = parsed;
  if (sub !== 'impact')
    throw usageError(`unknown subcommand 'report ${sub}' (see prtlab report --help)`);
  if (positionals.length > 0)
    throw usageError(`report impact: unexpected argument '${positionals[0]}'`);
  let ms: number;
  try {
    ms = parseDuration(values.since);
  } catch (err) {
    throw usageError(`report impact: --since: ${(err as Error).message}`);
  }
  const since = new Date(Date.now() - ms);
  const paths = await ensureCloudDirs(resolveDataDir(values.data));
  const store = new SignInStore(join(paths.root, SIGNINS_DB_NAME));
  try {
    const report = impactReport(readLog(store, since), {
      since,
      ...(values.policy !== undefined ? { policyId: values.policy } : {}),
    });
    if (values.json) io.out(`${JSON.stringify(report, null, 2)}\n`);
    else printReport(io, report);
    return 0;
  } finally {
    store.close();
  }
}
