/**
 * The directory's SQLite schema as numbered migrations. A database records the versions applied
 * in `schema_version`; opening applies the missing ones in one IMMEDIATE transaction, so two
 * processes opening a new database at once cannot both migrate it. A database newer than this
 * code is refused rather than guessed at. Never edit a shipped migration: add the next one.
 */

export interface Migration {
  readonly version: number;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE tenant (
        id           TEXT PRIMARY KEY,
        domain       TEXT NOT NULL,
        display_name TEXT NOT NULL,
        region       TEXT NOT NULL,
        created_at   TEXT NOT NULL
      );
      CREATE TABLE users (
        id            TEXT PRIMARY KEY,
        upn           TEXT NOT NULL,
        -- lowercase UPN: uniqueness and look-ups are case-insensitive, as in Entra
        upn_key       TEXT NOT NULL UNIQUE,
        display_name  TEXT NOT NULL,
        kind          TEXT NOT NULL CHECK (kind IN ('member', 'guest')),
        enabled       INTEGER NOT NULL CHECK (enabled IN (0, 1)),
        password_hash TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL
      );
      CREATE TABLE groups (
        id           TEXT PRIMARY KEY,
        display_name TEXT NOT NULL,
        name_key     TEXT NOT NULL UNIQUE,
        description  TEXT NOT NULL DEFAULT '',
        created_at   TEXT NOT NULL
      );
      CREATE TABLE group_members (
        group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
        user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        PRIMARY KEY (group_id, user_id)
      );
      CREATE INDEX group_members_user ON group_members (user_id);
      CREATE TABLE user_roles (
        user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        role_id TEXT NOT NULL,
        PRIMARY KEY (user_id, role_id)
      );
      CREATE TABLE devices (
        id                  TEXT PRIMARY KEY,
        object_id           TEXT NOT NULL UNIQUE,
        display_name        TEXT NOT NULL,
        join_type           INTEGER NOT NULL CHECK (join_type IN (0, 4, 6)),
        trust_type          TEXT NOT NULL CHECK (trust_type IN ('AzureAd', 'Workplace', 'ServerAd')),
        state               TEXT NOT NULL CHECK (state IN ('precreated', 'registered')),
        os                  TEXT NOT NULL,
        os_version          TEXT NOT NULL,
        device_type         TEXT NOT NULL,
        transport_key       BLOB,
        cert_thumbprint     TEXT UNIQUE,
        onprem_certificate  BLOB,
        enabled             INTEGER NOT NULL CHECK (enabled IN (0, 1)),
        registering_user_id TEXT REFERENCES users (id) ON DELETE SET NULL,
        system_labels       TEXT NOT NULL DEFAULT '[]',
        created_at          TEXT NOT NULL,
        updated_at          TEXT NOT NULL
      );
      CREATE TABLE applications (
        app_id          TEXT PRIMARY KEY,
        display_name    TEXT NOT NULL,
        kind            TEXT NOT NULL CHECK (kind IN ('resource', 'client')),
        identifier_uris TEXT NOT NULL DEFAULT '[]',
        broker_capable  INTEGER NOT NULL CHECK (broker_capable IN (0, 1)),
        public_client   INTEGER NOT NULL CHECK (public_client IN (0, 1))
      );
      -- No foreign keys: a record outlives its user or device, so revocation stays answerable.
      CREATE TABLE token_records (
        id         TEXT PRIMARY KEY,
        kind       TEXT NOT NULL CHECK (kind IN ('prt', 'refresh_token', 'access_token')),
        user_id    TEXT NOT NULL,
        device_id  TEXT,
        client_id  TEXT NOT NULL,
        parent_id  TEXT,
        issued_at  INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        revoked_at INTEGER
      );
      CREATE INDEX token_records_user ON token_records (user_id);
      CREATE INDEX token_records_device ON token_records (device_id);
      CREATE INDEX token_records_parent ON token_records (parent_id);
      CREATE INDEX token_records_expires ON token_records (expires_at);
    `,
  },
  {
    version: 2,
    sql: `
      -- Conditional Access policies as Graph conditionalAccessPolicy JSON (without the server
      -- fields id, createdDateTime and modifiedDateTime, which are columns).
      CREATE TABLE ca_policies (
        id                TEXT PRIMARY KEY,
        json              TEXT NOT NULL,
        created_at        TEXT NOT NULL,
        modified_at       TEXT,
        -- when the policy was first in report-only state (null: never)
        report_only_since TEXT
      );
    `,
  },
  {
    version: 3,
    sql: `
      -- Tenant-wide Conditional Access settings as key/value text (for now only 'edition': which
      -- catalog of token-protection requirements the tenant follows; see cloud/ca/catalog.ts).
      CREATE TABLE ca_settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );
    `,
  },
  {
    version: 4,
    sql: `
      -- What device management (Intune, Autopilot) records about a device, for Conditional
      -- Access device filters and the grant control compliantDevice. NULL: never reported.
      ALTER TABLE devices ADD COLUMN is_compliant INTEGER;
      ALTER TABLE devices ADD COLUMN enrollment_profile_name TEXT;
      ALTER TABLE devices ADD COLUMN profile_type TEXT;
    `,
  },
  {
    version: 5,
    sql: `
      -- TPM attestation of the registration (cloud/registration/attestation.ts): 'verified' when
      -- DRS checked an AK chain to a trusted TPM manufacturer CA and TPM2_Certify of the device and
      -- transport keys; 'absent' otherwise, with the reason. Devices from before this version
      -- registered without attestation being recorded: 'absent'.
      ALTER TABLE devices ADD COLUMN attestation_status TEXT NOT NULL DEFAULT 'absent'
        CHECK (attestation_status IN ('verified', 'absent'));
      ALTER TABLE devices ADD COLUMN attestation_reason TEXT NOT NULL
        DEFAULT 'registered before the directory recorded attestation';
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS.reduce((max, m) => Math.max(max, m.version), 0);
