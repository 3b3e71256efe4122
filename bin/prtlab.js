#!/usr/bin/env node
// The prtlab command. The TypeScript sources are compiled to dist/ by `npm run build`
// (run automatically by `npm ci` / `npm install`).
import('../dist/cli/main.js')
  .then((m) => m.main(process.argv.slice(2)))
  .then((code) => {
    process.exitCode = code;
  })
  .catch((err) => {
    if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli')) {
      console.error('prtlab: not built yet; run `npm run build` first');
    } else {
      console.error(err);
    }
    process.exitCode = 1;
  });
