/**
 * `prtlab attack` (cli/attack.ts): help on every subcommand, the scenario list, refused options,
 * and a run whose observation differs from its scenario's expectation, which must be reported and
 * end with exit status 1.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultScenarioDir } from '../../attacks/scenario.ts';
import { attackCommand } from '../../cli/attack.ts';
import { buildSourcePrograms, type SourcePrograms } from '../shared/attacks.ts';
import { captureIo } from '../shared/cli.ts';

async function attack(argv: string[], options: Parameters<typeof attackCommand>[2] = {}) {
  const io = captureIo();
  const code = await attackCommand(argv, io, options);
  return { code, out: io.stdout, err: io.stderr };
}

describe('prtlab attack', () => {
  it('prints its help, and each subcommand its own', async () => {
    expect(await attack([])).toMatchObject({
      code: 2,
      out: expect.stringMatching(/^Usage: prtlab attack <subcommand>/),
    });
    expect((await attack(['--help'])).code).toBe(0);
    const list = await attack(['list', '--help']);
    expect(list).toMatchObject({
      code: 0,
      out: expect.stringMatching(/^Usage: prtlab attack list/),
    });
    const run = await attack(['run', '-h']);
    expect(run.code).toBe(0);
    expect(run.out).toMatch(/^Usage: prtlab attack run/);
    expect(run.out).toMatch(/--format F +table \(default\), json, md or html/);
  });

  it('lists the scenarios with what each steals', async () => {
    const { code, out } = await attack(['list']);
    expect(code).toBe(0);
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^# +ID +KIND +STOLEN +REPLAYS +TITLE$/);
    expect(lines).toHaveLength(12);
    expect(out).toMatch(
      /\n4 +broker-bound-refresh-token +attack +broker-cache-entry \(broker-cache\) +2 /,
    );
    expect(out).toMatch(/\n11 +rollout-impact +rollout +nothing \(rollout impact\) +13 /);
    const json = JSON.parse((await attack(['list', '--json'])).out);
    expect(json.map((s: { id: string }) => s.id)).toContain('prt-cookie-replay');
  });

  it.each([
    [['run', '--format', 'pdf'], /--format must be one of table, json, md, html/],
    [['run', '--states', 'off,sideways'], /unknown policy state 'sideways'/],
    [['run', '--scenario', '99'], /no scenario '99'/],
    [['run', 'extra'], /unexpected argument 'extra'/],
    [['run', '--data', '/tmp'], /--data does not apply/],
    [['steal'], /unknown subcommand 'attack steal'/],
  ])('refuses %j with ERR_ATTACK', async (argv, message) => {
    await expect(attackCommand(argv, captureIo())).rejects.toMatchObject({
      code: 'ERR_ATTACK',
      message: expect.stringMatching(message),
    });
  });

  it('refuses an unknown option as a usage error', async () => {
    await expect(attackCommand(['run', '--fast'], captureIo())).rejects.toMatchObject({
      code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION',
    });
  });
});

describe('prtlab attack run', () => {
  let built: SourcePrograms;
  let dir: string;

  beforeAll(async () => {
    built = await buildSourcePrograms();
    dir = await mkdtemp(join(tmpdir(), 'prtlab-attack-cli-'));
    // Scenario 2 with a wrong expectation: that enforcement lets the phished password through.
    const doc = JSON.parse(
      await readFile(join(defaultScenarioDir(), '02-phished-password.json'), 'utf8'),
    );
    doc.replays[0].expect.on = { outcome: 'allowed', why: 'a deliberately wrong expectation' };
    await writeFile(join(dir, '02-wrong.json'), JSON.stringify(doc));
  }, 60_000);

  afterAll(async () => {
    await built?.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reports an observation that differs from its expectation and exits 1', async () => {
    const { code, out, err } = await attack(['run', '--states', 'on'], {
      programs: built.programs,
      scenarioDir: dir,
    });
    expect(code).toBe(1);
    expect(err).toMatch(/^attack: \[1\/1\] 2 phished-password: /m);
    expect(err).toMatch(
      /as-windows-desktop-client \[on\]: blocked AADSTS53003 \(expected allowed\) DIFFERS/,
    );
    expect(out).toMatch(
      /as-windows-desktop-client +on +allowed +blocked 53003 +400 +failure +unbound 1002 +DIFFERS/,
    );
    expect(out).toMatch(/no-user-agent +on +allowed +allowed +200 +notApplied +unbound 1002 +ok/);
    expect(out.trimEnd().endsWith('1 of 2 observations differ from their expectation.')).toBe(true);
  }, 120_000);

  it('writes the report to --out in the format asked for and says so', async () => {
    const file = join(dir, 'report.html');
    const { code, out } = await attack(
      [
        'run',
        '--scenario',
        'phished-password',
        '--states',
        'off',
        '--format',
        'html',
        '--out',
        file,
      ],
      { programs: built.programs },
    );
    expect(code).toBe(0);
    expect(out).toBe(`report written to ${file}: all 2 observations as expected\n`);
    const page = await readFile(file, 'utf8');
    expect(page).toMatch(/^<!DOCTYPE html>/);
    expect(page).toContain('<p class="verdict ok">All 2 observations as expected.</p>');
  }, 120_000);
});
