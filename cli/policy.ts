/** `prtlab policy ...`: Conditional Access policies on the data directory, with lint warnings. */
import { readFile } from 'node:fs/promises';
import { CaError } from '../cloud/ca/errors.ts';
import { type PolicyState, parsePolicy } from '../cloud/ca/policy.ts';
import type { Directory, StoredPolicy } from '../cloud/directory/types.ts';
import { DirectoryError } from '../cloud/errors.ts';
import { lintPolicy } from '../cloud/policies/lint.ts';
import { PRESETS, tokenProtectionPreset } from '../cloud/policies/preset.ts';
import { expectPositionals, parseSubcommand, printList, withDirectory } from './cloud-data.ts';
import { type Io, usageError } from './io.ts';
import { POLICY_HELP } from './usage.ts';

const STATE_ALIASES: Readonly<Record<string, PolicyState>> = {
  enabled: 'enabled',
  disabled: 'disabled',
  enabledForReportingButNotEnforced: 'enabledForReportingButNotEnforced',
  on: 'enabled',
  off: 'disabled',
  reportOnly: 'enabledForReportingButNotEnforced',
};

/** A state or its short name (on, off, reportOnly); a usage error otherwise. */
export function parseState(value: string, command: string): PolicyState {
  const state = Object.hasOwn(STATE_ALIASES, value) ? STATE_ALIASES[value] : undefined;
  if (state === undefined) {
    throw usageError(
      `${command}: state must be one of ${Object.keys(STATE_ALIASES).join(', ')} (got '${value}')`,
    );
  }
  return state;
}

function printWarnings(io: Io, stored: StoredPolicy): void {
  const warnings = lintPolicy(parsePolicy(stored.policy), {
    reportOnlyHistory: stored.reportOnlySince !== null,
  });
  for (const w of warnings) io.err(`prtlab: warning: ${w.message} [${w.code}]\n`);
}

async function readPolicyFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw usageError(`policy add: cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CaError('ERR_CA_POLICY', `(policy): ${path} is not JSON: ${(err as Error).message}`);
  }
}

async function presetPolicy(
  d: Directory,
  state: PolicyState,
  groups: readonly string[],
  users: readonly string[],
): Promise<Record<string, unknown>> {
  const includeGroups: string[] = [];
  for (const name of groups) {
    const g = await d.groups.find(name);
    if (!g) throw new DirectoryError(9990002, `no group '${name}' in the directory`);
    includeGroups.push(g.id);
  }
  const excludeUsers: string[] = [];
  for (const upn of users) {
    const u = await d.users.find(upn);
    if (!u) throw new DirectoryError(50034, `no user '${upn}' in the directory`);
    excludeUsers.push(u.id);
  }
  return tokenProtectionPreset({ state, includeGroups, excludeUsers });
}

export async function policyCommand(argv: string[], io: Io): Promise<number> {
  const args = parseSubcommand(
    argv,
    {
      preset: { type: 'string' },
      state: { type: 'string' },
      'include-group': { type: 'string', multiple: true },
      'exclude-user': { type: 'string', multiple: true },
      json: { type: 'boolean', default: false },
    },
    POLICY_HELP,
    io,
  );
  if (typeof args === 'number') return args;
  const { sub, values, positionals } = args;
  const presetOnly =
    values.state !== undefined ||
    values['include-group'] !== undefined ||
    values['exclude-user'] !== undefined;
  if (sub !== 'add' && (presetOnly || values.preset !== undefined)) {
    throw usageError(`policy ${sub}: only 'policy add' takes those options`);
  }
  if (sub !== 'list' && values.json) throw usageError(`policy ${sub}: --json does not apply`);

  switch (sub) {
    case 'add': {
      let stored: StoredPolicy;
      if (values.preset !== undefined) {
        if (!(PRESETS as readonly string[]).includes(values.preset)) {
          throw usageError(`policy add: unknown preset '${values.preset}' (known: ${PRESETS})`);
        }
        expectPositionals(positionals, [], 'policy add --preset');
        const state = parseState(values.state ?? 'reportOnly', 'policy add');
        stored = await withDirectory(values.data, async (d) =>
          d.policies.create(
            await presetPolicy(
              d,
              state,
              values['include-group'] ?? [],
              values['exclude-user'] ?? [],
            ),
          ),
        );
      } else {
        if (presetOnly) throw usageError('policy add: those options need --preset');
        const [file] = expectPositionals(positionals, ['FILE.json'], 'policy add');
        const json = await readPolicyFile(file!);
        stored = await withDirectory(values.data, (d) => d.policies.create(json));
      }
      io.out(
        `added policy '${stored.policy.displayName}' (id ${stored.id}, state ${stored.state})\n`,
      );
      printWarnings(io, stored);
      return 0;
    }
    case 'list': {
      expectPositionals(positionals, [], 'policy list');
      const policies = await withDirectory(values.data, (d) => d.policies.list());
      printList(io, policies, values.json, {
        none: 'no policies',
        json: (p) => p.policy,
        header: ['ID', 'STATE', 'DISPLAY NAME'],
        row: (p) => [p.id, p.state, String(p.policy.displayName)],
      });
      return 0;
    }
    case 'set-state': {
      const [id, value] = expectPositionals(positionals, ['ID', 'STATE'], 'policy set-state');
      const state = parseState(value!, 'policy set-state');
      const stored = await withDirectory(values.data, (d) => d.policies.setState(id!, state));
      if (!stored) throw new CaError('ERR_CA_POLICY', `id: no policy '${id}' in the directory`);
      io.out(`policy '${stored.policy.displayName}' (id ${stored.id}) is now ${stored.state}\n`);
      printWarnings(io, stored);
      return 0;
    }
    case 'edition': {
      if (positionals.length > 1)
        throw usageError(`policy edition: unexpected argument '${positionals[1]}'`);
      const [name] = positionals;
      if (name === undefined) {
        const current = await withDirectory(values.data, (d) => d.policies.edition());
        io.out(`${current}\n`);
        return 0;
      }
      await withDirectory(values.data, (d) => d.policies.setEdition(name));
      io.out(`the tenant now follows the ${name} catalog\n`);
      return 0;
    }
    default:
      throw usageError(`unknown subcommand 'policy ${sub}' (see prtlab policy --help)`);
  }
}
