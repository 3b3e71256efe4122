/** Help texts, one per command. */
export const MAIN_HELP = `prtlab: a lab for device-bound tokens

Usage: prtlab <command> [options]

Commands:
  up            the whole lab in one process: cloud, demo tenant, device and broker (npm start)
  tpm serve     run the software TPM 2.0 on loopback for tpm2-tools, swtpm clients and the agent
  cloud serve   run the simulated Entra ID (HTTPS on 127.0.0.1:8443)
  cloud ca      print the path of the lab CA certificate clients must trust
  cloud device  list, disable, enable, set, delete or pre-create device objects (the cloud's side)
  device        add, sign in, start (agent and broker), show the status of, list or remove
                simulated Windows devices
  client        list the native-client stubs, or run one against a device's broker or the cloud
  attack        list the stolen-token scenarios, or replay them against every policy state
  user          add, list, disable or enable directory users
  group         add or list directory groups
  policy        add, list or change Conditional Access policies
  signins       list the sign-in log (newest first)
  report        report impact: token-protection impact per app and user, from the sign-in log

Commands that touch lab state take --data DIR (default $PRTLAB_HOME, or ./.prtlab).

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
  --data DIR           the lab's data directory (default $PRTLAB_HOME, else ./.prtlab)
  --state DIR          TPM state directory (default DATA/tpm)
  --key-file PATH      keep the sealing key in a 0600 file (default: DIR/sealing.key)
  --keystore secret-service
                       keep the sealing key in the OS keystore (Secret Service over D-Bus);
                       a locked or unreachable keystore is an error, never a fallback
  --allow-remote       allow a non-loopback --host (the ports have no authentication)
  --transient-slots N  transient object slots (default 3, like swtpm)
  -h, --help           show this help
`;

const DATA_OPTION = `  --data DIR           the lab's data directory (default $PRTLAB_HOME, or ./.prtlab)`;

export const CLOUD_HELP = `Usage: prtlab cloud <subcommand> [options]

Subcommands:
  serve         run the simulated Entra ID over HTTPS
  ca            print the lab CA certificate's path (creating the CA if needed)
  device        list, disable, enable, set, delete or pre-create device objects
  trust-tpm-ca  trust a TPM manufacturer CA for attested device registration
  setting       print or set a tenant setting (require-attestation on|off)
`;

export const CLOUD_TRUST_TPM_CA_HELP = `Usage: prtlab cloud trust-tpm-ca FILE [options]

Adds FILE (one PEM CA certificate) to DIR/cloud/trusted-tpm-manufacturers/, the TPM
manufacturer CAs device registration accepts EK certificates from (AikCertificate). The lab's own
manufacturer CA (DIR/tpm-manufacturer/ca.pem) is trusted without this when the TPMs share the
cloud's data directory. Applies from the next registration. Prints the file written.

Options:
${DATA_OPTION}
  -h, --help           show this help
`;

export const CLOUD_SETTING_HELP = `Usage: prtlab cloud setting require-attestation [on|off] [options]

Prints or sets the tenant setting requireHardwareBackedRegistration (off by default, as in
Entra). On: a device registration without TPM attestation is refused with AADSTS9990220.
Applies from the next registration, also while the cloud runs.

Options:
${DATA_OPTION}
  -h, --help           show this help
`;

export const CLOUD_SERVE_HELP = `Usage: prtlab cloud serve [options]

Runs the simulated Microsoft Entra ID over HTTPS. On first start it creates, in DIR/cloud:
the lab root CA (ca/lab-ca.pem: the only certificate clients need to trust), the device CA
CN=MS-Organization-Access, the server certificate (127.0.0.1, ::1, localhost), the RS256
token-signing key, and the directory (tenant contoso.test with a generated tenant id).
Serves OpenID discovery (v1 and v2) and the JWKS under /{tenant}/, where {tenant} is common,
organizations, the tenant id or its domain. Errors are Entra-shaped JSON (AADSTS codes).
Stops cleanly on SIGINT or SIGTERM.

Options:
${DATA_OPTION}
  --host ADDR          address to bind (default 127.0.0.1); only loopback unless --allow-remote
  --port PORT          port (default 8443; 0 picks a free one)
  --allow-remote       allow a non-loopback --host (the cloud issues tokens to anyone who reaches it)
  -h, --help           show this help
`;

export const CLOUD_CA_HELP = `Usage: prtlab cloud ca [options]

Prints the path of the lab root CA certificate (PEM), creating the CAs if they do not exist yet.
Trust it to talk to the cloud, e.g.  curl --cacert "$(prtlab cloud ca)" https://127.0.0.1:8443/common/discovery/keys

Options:
${DATA_OPTION}
  -h, --help           show this help
`;

export const CLOUD_DEVICE_HELP = `Usage: prtlab cloud device <subcommand> [options]

Subcommands:
  list [--json]                  list device objects
  disable ID                     disable a device (by device id or object id)
  enable ID                      enable it again
  set ID [--compliant true|false|unknown] [--enrollment-profile NAME] [--profile-type TYPE]
         [--labels A,B]          record what device management would (Intune compliance, the
                                 Autopilot profile, profileType, systemLabels such as CloudPC);
                                 Conditional Access device filters and compliantDevice read them
  delete ID                      delete a device and revoke its tokens
  precreate --cert PEM_FILE [--name NAME]
                                 pre-create a hybrid-joined device (join type 6) from its
                                 on-premises certificate: self-signed, RSA, subject CN = the
                                 device GUID; the device then joins with PUT /EnrollmentServer/device/ID

Options:
${DATA_OPTION}
  -h, --help           show this help
`;

export const USER_HELP = `Usage: prtlab user <subcommand> [options]

Subcommands:
  add UPN (--password PW | --password-stdin) [--guest] [--display-name NAME]
          [--role NAME]... [--group NAME]...
                       add a user; a member's UPN must be in the tenant's domain (contoso.test),
                       a guest's (--guest) outside it. Passwords are 8 to 256 characters and are
                       stored only as scrypt hashes. --password puts the password on the command
                       line, where other local users can see it (ps); prefer --password-stdin,
                       which reads it from standard input (one trailing newline is removed).
                       Roles: Global Administrator, Cloud Device Administrator, User, ...
                       (an unknown name is refused with the full list); groups must exist
                       (prtlab group add).
  list [--json]        list users with their roles and groups
  disable UPN|ID       disable a user (sign-ins fail with AADSTS50057)
  enable UPN|ID        enable a user again

Options:
${DATA_OPTION}
  -h, --help           show this help
`;

export const GROUP_HELP = `Usage: prtlab group <subcommand> [options]

Subcommands:
  add NAME [--description TEXT]   add a group (names are unique, case-insensitive)
  list [--json]                   list groups with their member count

Options:
${DATA_OPTION}
  -h, --help           show this help
`;

export const POLICY_HELP = `Usage: prtlab policy <subcommand> [options]

Conditional Access policies, stored as Microsoft Graph (beta) conditionalAccessPolicy JSON.

Subcommands:
  add FILE.json        add a policy from a Graph conditionalAccessPolicy document
  add --preset token-protection [--state reportOnly|on|off] [--include-group NAME]...
      [--exclude-user UPN]...
                       add the token-protection policy: Exchange Online and SharePoint Online,
                       Windows, mobile apps and desktop clients only, require token protection
                       for sign-in sessions; report-only unless --state says otherwise; all
                       users unless --include-group is given
  list [--json]        list policies (--json prints the Graph JSON)
  set-state ID STATE   STATE: enabled, disabled, enabledForReportingButNotEnforced
                       (or on, off, reportOnly)
  edition [NAME]       print, or set, the catalog of token-protection requirements the tenant
                       follows: 2023-preview (the preview document; blocks with AADSTS53003,
                       the default) or 2025-ga (later documents; blocks with AADSTS530084)

add and set-state print warnings (standard error) for risky policies: the Office365 app group
targeted, client app types not set or including browsers, guests included where B2B is not
supported, no excluded (break-glass) account, enabled without having been report-only.

Options:
${DATA_OPTION}
  -h, --help           show this help
`;

export const SIGNINS_HELP = `Usage: prtlab signins [options]

Lists the sign-in log (one entry per token request), newest first.

Options:
  --user UPN           only this user's sign-ins
  --app NAME|ID        only this client application (display name or app id)
  --top N              at most N entries (1 to 1000, default 50)
  --json               print the Graph beta signIn objects as JSON
${DATA_OPTION}
  -h, --help           show this help
`;

export const REPORT_HELP = `Usage: prtlab report impact [options]

From the sign-in log: for token-protection policies (session control SignInTokenProtection), or
only the policy given, the requests per app and per user, how many were blocked or would be
(report-only failures with token protection not satisfied), how many allowed, the blocked users
and the percentage allowed. Policies that did not apply are not counted.

Options:
  --policy ID          only this policy (any policy, not just token protection)
  --since DURATION     look back this far: 7d, 24h, 30m (default 7d)
  --json               print the report as JSON
${DATA_OPTION}
  -h, --help           show this help
`;
