/** Help texts, one per command. */
export const MAIN_HELP = `prtlab: a lab for device-bound tokens

Usage: prtlab <command> [options]

Commands:
  tpm serve     run the software TPM 2.0 on loopback for tpm2-tools, swtpm clients and the agent

Options:
  -h, --help    show help (also: prtlab <command> --help)
  --version     show the version
`;

export const TPM_HELP = `Usage: prtlab tpm <subcommand> [options]

Subcommands:
  serve         run the software TPM 2.0 server
`;

export const TPM_SERVE_HELP = `Usage: prtlab tpm serve [options]

Runs the software TPM 2.0 on two TCP ports, like the Microsoft simulator and swtpm:
  PORT      TPM commands, raw (swtpm) or MS-simulator framing, detected per connection
  PORT+1    platform commands (MS: power on/off, NV on, ...) and swtpm's SET_LOCALITY
tpm2-tools work with either TCTI:
  -T swtpm:host=127.0.0.1,port=PORT     (recommended: no Nagle stall)
  -T mssim:host=127.0.0.1,port=PORT
The TPM runs TPM2_Startup(CLEAR) on power-on. Persistent objects, hierarchy seeds and the clock
are kept in the state directory, sealed with AES-256-GCM under a key from the key source.

Options:
  --host ADDR          address to bind (default 127.0.0.1); only loopback unless --allow-remote
  --port PORT          data port (default 2321); the platform port is PORT+1
  --state DIR          state directory (default $PRTLAB_HOME/tpm, or ./.prtlab/tpm)
  --key-file PATH      keep the sealing key in a 0600 file (default: DIR/sealing.key)
  --keystore secret-service
                       keep the sealing key in the OS keystore (Secret Service over D-Bus);
                       a locked or unreachable keystore is an error, never a fallback
  --allow-remote       allow a non-loopback --host (the ports have no authentication)
  --transient-slots N  transient object slots (default 3, like swtpm)
  -h, --help           show this help
`;
