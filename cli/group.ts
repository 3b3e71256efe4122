/** `prtlab group ...`: directory groups on the data directory. */
import { expectPositionals, parseSubcommand, printList, withDirectory } from './cloud-data.ts';
import { type Io, usageError } from './io.ts';
import { GROUP_HELP } from './usage.ts';

export async function groupCommand(argv: string[], io: Io): Promise<number> {
  const args = parseSubcommand(
    argv,
    {
      description: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    GROUP_HELP,
    io,
  );
  if (typeof args === 'number') return args;
  const { sub, values, positionals } = args;
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
      printList(io, rows, values.json, {
        none: 'no groups',
        json: ({ group, members }) => ({
          ...group,
          members: members.map((u) => ({ id: u.id, userPrincipalName: u.upn })),
        }),
        header: ['NAME', 'OBJECT ID', 'MEMBERS'],
        row: ({ group, members }) => [group.displayName, group.id, String(members.length)],
      });
      return 0;
    }
    default:
      throw usageError(`unknown subcommand 'group ${sub}' (see prtlab group --help)`);
  }
}
