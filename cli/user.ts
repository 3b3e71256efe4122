/** `prtlab user ...`: directory users on the data directory (works while the cloud runs). */
import { DirectoryError } from '../cloud/errors.ts';
import { expectPositionals, parseSubcommand, printList, withDirectory } from './cloud-data.ts';
import { type Io, readStdin, usageError } from './io.ts';
import { USER_HELP } from './usage.ts';

export async function userCommand(argv: string[], io: Io): Promise<number> {
  const args = parseSubcommand(
    argv,
    {
      password: { type: 'string' },
      'password-stdin': { type: 'boolean', default: false },
      guest: { type: 'boolean', default: false },
      'display-name': { type: 'string' },
      role: { type: 'string', multiple: true },
      group: { type: 'string', multiple: true },
      json: { type: 'boolean', default: false },
    },
    USER_HELP,
    io,
  );
  if (typeof args === 'number') return args;
  const { sub, values, positionals } = args;
  const addOnly =
    values.password !== undefined ||
    values['password-stdin'] ||
    values.guest ||
    values['display-name'] !== undefined ||
    values.role !== undefined ||
    values.group !== undefined;
  if (sub !== 'add' && addOnly)
    throw usageError(`user ${sub}: only 'user add' takes those options`);
  if (sub !== 'list' && values.json) throw usageError(`user ${sub}: --json does not apply`);

  switch (sub) {
    case 'add': {
      const [upn] = expectPositionals(positionals, ['UPN'], 'user add');
      const password = await passwordFrom(values.password, values['password-stdin'], io);
      const user = await withDirectory(values.data, (d) =>
        d.users.create({
          upn: upn!,
          password,
          kind: values.guest ? 'guest' : 'member',
          ...(values['display-name'] !== undefined ? { displayName: values['display-name'] } : {}),
          roles: values.role ?? [],
          groups: values.group ?? [],
        }),
      );
      io.out(`added ${user.kind} ${user.upn} (object id ${user.id})\n`);
      return 0;
    }
    case 'list': {
      expectPositionals(positionals, [], 'user list');
      const rows = await withDirectory(values.data, async (d) => {
        const users = await d.users.list();
        return Promise.all(
          users.map(async (u) => ({ user: u, memberOf: await d.users.memberOf(u.id) })),
        );
      });
      printList(io, rows, values.json, {
        none: 'no users',
        json: ({ user, memberOf }) => ({
          ...user,
          roles: memberOf.roles.map((r) => ({ id: r.id, displayName: r.displayName })),
          groups: memberOf.groups.map((g) => ({ id: g.id, displayName: g.displayName })),
        }),
        header: ['UPN', 'OBJECT ID', 'KIND', 'ENABLED', 'ROLES', 'GROUPS'],
        row: ({ user, memberOf }) => [
          user.upn,
          user.id,
          user.kind,
          user.enabled ? 'yes' : 'no',
          memberOf.roles.map((r) => r.displayName).join(', ') || '-',
          memberOf.groups.map((g) => g.displayName).join(', ') || '-',
        ],
      });
      return 0;
    }
    case 'disable':
    case 'enable': {
      const [who] = expectPositionals(positionals, ['UPN|ID'], `user ${sub}`);
      const user = await withDirectory(values.data, async (d) => {
        const found = await d.users.find(who!);
        if (!found) throw new DirectoryError(50034, `no user '${who}' in the directory`);
        return d.users.setEnabled(found.id, sub === 'enable');
      });
      io.out(`${sub}d ${user.upn}\n`);
      return 0;
    }
    default:
      throw usageError(`unknown subcommand 'user ${sub}' (see prtlab user --help)`);
  }
}

/**
 * The password from exactly one of --password and --password-stdin. From standard input, one
 * trailing newline (as `echo` or a here-string adds) is removed; nothing else is trimmed.
 */
async function passwordFrom(flag: string | undefined, fromStdin: boolean, io: Io): Promise<string> {
  if (flag !== undefined && fromStdin)
    throw usageError('user add: give --password or --password-stdin, not both');
  if (flag !== undefined) return flag;
  if (!fromStdin) throw usageError('user add: --password PW or --password-stdin is required');
  const text = await readStdin(io);
  return text.replace(/\r?\n$/, '');
}
