/**
 * Shared by the attack-harness tests: the harness's child programs (the attacker and the victim's
 * own host) from the TypeScript sources. Node 20 runs no TypeScript, and `prtlab` runs them from
 * dist/; a test must not depend on a build being current, so the programs and every module they
 * import are transpiled (TypeScript's transpileModule, types erased, `.ts` imports rewritten to
 * `.js`) into a temporary directory whose node_modules is a link to the project's.
 */
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import type { Programs } from '../../attacks/programs.ts';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const ENTRIES = ['attacks/attacker-main.ts', 'attacks/victim-host.ts'];

export interface SourcePrograms {
  readonly programs: Programs;
  /** Removes the transpiled copy. */
  remove(): Promise<void>;
}

/** Transpiles the two programs and their relative imports; returns how to start them. */
export async function buildSourcePrograms(): Promise<SourcePrograms> {
  const out = await mkdtemp(join(tmpdir(), 'prtlab-attack-programs-'));
  try {
    await writeFile(join(out, 'package.json'), '{"type":"module"}\n');
    await symlink(join(ROOT, 'node_modules'), join(out, 'node_modules'), 'dir');
    const pending = ENTRIES.map((e) => join(ROOT, e));
    const done = new Set<string>();
    while (pending.length > 0) {
      const file = pending.pop()!;
      if (done.has(file)) continue;
      done.add(file);
      const source = await readFile(file, 'utf8');
      for (const specifier of relativeImports(file, source)) {
        pending.push(resolve(dirname(file), specifier));
      }
      const js = ts.transpileModule(source, {
        fileName: file,
        compilerOptions: {
          module: ts.ModuleKind.ESNext,
          target: ts.ScriptTarget.ES2022,
          verbatimModuleSyntax: true,
          rewriteRelativeImportExtensions: true,
        },
      }).outputText;
      const target = join(out, relative(ROOT, file)).replace(/\.ts$/, '.js');
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, js);
    }
    const at = (entry: string) => [process.execPath, join(out, entry.replace(/\.ts$/, '.js'))];
    return {
      programs: { attacker: at(ENTRIES[0]!), victimHost: at(ENTRIES[1]!) },
      remove: () => rm(out, { recursive: true, force: true }),
    };
  } catch (err) {
    await rm(out, { recursive: true, force: true });
    throw err;
  }
}

/**
 * The relative module specifiers of a source file: import and export declarations (including
 * `export * as name from`, which ts.preProcessFile does not report) and dynamic `import('...')`.
 */
function relativeImports(fileName: string, source: string): string[] {
  const sf = ts.createSourceFile(fileName, source, ts.ScriptTarget.ES2022, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    let spec: ts.Expression | undefined;
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) spec = node.moduleSpecifier;
    else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments.length > 0
    )
      spec = node.arguments[0];
    if (spec && ts.isStringLiteral(spec) && spec.text.startsWith('.')) found.push(spec.text);
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}
