import { defineConfig } from 'vitest/config';

// Two projects: `unit` needs nothing but `npm ci`; `interop` drives Debian's swtpm, tpm2-tools,
// openssl and gnome-keyring and fails (never skips) when one of them is missing.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'interop',
          include: ['test/interop/**/*.test.ts'],
          globalSetup: ['test/interop/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
