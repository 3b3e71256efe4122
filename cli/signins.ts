/** `prtlab signins`: the sign-in log of the data directory, newest first. */
import { join } from 'node:path';
import { ensureCloudDirs, resolveDataDir } from '../cloud/data-dir.ts';
import { parseTop } from '../cloud/graph/filter.ts';
import type { SignInEntry } from '../cloud/signins/entry.ts';
import { SIGNINS_DB_NAME, SignInStore } from '../cloud/signins/store.ts';
import { parseDataArgs, printList } from './cloud-data.ts';
import { type Io, usageError } from './io.ts';
import { SIGNINS_HELP } from './usage.ts';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** An OData string literal. */
function literal(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/** The `$filter` for --user and --app (an app by id or display name). */
export function signInsFilter(user?: string, app?: string): string | undefined {
  const terms: string[] = [];
  if (user !== undefined) terms.push(`userPrincipalName eq ${literal(user.toLowerCase())}`);
  if (app !== undefined)
    terms.push(GUID.test(app) ? `appId eq ${literal(app)}` : `appDisplayName eq ${literal(app)}`);
  return terms.length === 0 ? undefined : terms.join(' and ');
}

function caSummary(e: SignInEntry): string {
  const results = e.appliedConditionalAccessPolicies
    .filter((p) => p.result !== 'notApplied' && p.result !== 'reportOnlyNotApplied')
    .map((p) => p.result);
  return results.length === 0
    ? e.conditionalAccessStatus
    : `${e.conditionalAccessStatus} (${results.join(',')})`;
}

function tpSummary(e: SignInEntry): string {
  const d = e.tokenProtectionStatusDetails;
  return d.signInSessionStatus === 'unbound'
    ? `unbound ${d.signInSessionStatusCode}`
    : d.signInSessionStatus;
}

export async function signInsCommand(argv: string[], io: Io): Promise<number> {
  const parsed = parseDataArgs(
    argv,
    {
      user: { type: 'string' },
      app: { type: 'string' },
      top: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    SIGNINS_HELP,
    io,
  );
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (positionals.length > 0) throw usageError(`signins: unexpected argument '${positionals[0]}'`);
  let top: number;
  try {
    top = parseTop(values.top, 50);
  } catch (err) {
    throw usageError(`signins: ${(err as Error).message}`);
  }
  const paths = await ensureCloudDirs(resolveDataDir(values.data));
  const store = new SignInStore(join(paths.root, SIGNINS_DB_NAME));
  try {
    const filter = signInsFilter(values.user, values.app);
    const page = store.list({ top, ...(filter !== undefined ? { filter } : {}) });
    printList(io, page.value, values.json, {
      none: 'No sign-ins.',
      json: (e) => e,
      header: ['TIME', 'USER', 'APP', 'RESOURCE', 'CLIENT', 'STATUS', 'CA', 'TOKEN PROTECTION'],
      row: (e) => [
        e.createdDateTime,
        e.userPrincipalName,
        e.appDisplayName || e.appId,
        e.resourceDisplayName || e.resourceId,
        e.isInteractive ? 'interactive' : 'non-interactive',
        String(e.status.errorCode),
        caSummary(e),
        tpSummary(e),
      ],
    });
    return 0;
  } finally {
    store.close();
  }
}
