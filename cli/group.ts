/** `prtlab group ...`: directory groups on the data directory. */
import { parseArgs } from 'node:util';
import { DATA_OPTION, expectPositionals, table, withDirectory } from './cloud-data.ts';
import { type Io, usageError } from './io.ts';
import { GROUP_HELP } from './usage.ts';

export async function groupCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '-h' || sub === '--help') {
    io.out(GROUP_HELP);
    return sub === undefined ? 2 : 0;
  }
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      ...DATA_OPTION,
      help: { type: 'boolean', short: 'h', default: false },
      description: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.out(GROUP_HELP);
    return 0;
  }
  switch (sub) {
    case 'add': {
      if (values.json) throw usageError('group add: --json does not apply');
      const [name] = expectPositionals(positionals, ['NAME'], 'group add');
      const group = await withDirectory(values.data, (d) =>
        d.groups.create(name!, values.description ?? ''),
      );
      io.out(`added group ${group.displayName} (object id ${group.id})\n`);
      return 0;
    }
    case 'list': {
      if (values.description !== undefined)
        throw usageError('group list: --description does not apply');
      expectPositionals(positionals, [], 'group list');
      const rows = await withDirectory(values.data, async (d) => {
        const groups = await d.groups.list();
        return Promise.all(
          groups.map(async (g) => ({ group: g, members: await d.groups.members(g.id) })),
        );
      });
      if (values.json) {
        const json = rows.map(({ group, members }) => ({
          ...group,
          members: members.map((u) => ({ id: u.id, userPrincipalName: u.upn })),
        }));
        io.out(`${JSON.stringify(json, null, 2)}\n`);
      } else if (rows.length === 0) {
        io.out('no groups\n');
      } else {
        table(
          io,
          ['NAME', 'OBJECT ID', 'MEMBERS'],
          rows.map(({ group, members }) => [group.displayName, group.id, String(members.length)]),
        );
      }
      return 0;
    }
    default:
      throw usageError(`unknown subcommand 'group ${sub}' (see prtlab group --help)`);
  }
}
