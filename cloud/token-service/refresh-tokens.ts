/**
 * Issuing an app refresh token: a record in the directory (for revocation, with its parent so
 * revoking a PRT reaches everything obtained with it) and the sealed token itself.
 */
import { randomUUID } from 'node:crypto';
import { type RefreshTokenClaims, sealRefreshToken } from '../tokens/claims.ts';
import { REFRESH_TOKEN_LIFETIME_S, type TokenContext } from './context.ts';

export async function issueRefreshToken(
  ctx: TokenContext,
  claims: Omit<RefreshTokenClaims, 'jti' | 'iat' | 'exp'>,
  record: { parentId?: string } = {},
): Promise<string> {
  return (await mintRefreshToken(ctx, claims, record)).token;
}

/** issueRefreshToken, also answering the token's id (its directory record, for revocation). */
export async function mintRefreshToken(
  ctx: TokenContext,
  claims: Omit<RefreshTokenClaims, 'jti' | 'iat' | 'exp'>,
  record: { parentId?: string } = {},
): Promise<{ token: string; jti: string }> {
  const jti = randomUUID();
  const exp = ctx.now + REFRESH_TOKEN_LIFETIME_S;
  await ctx.cloud.directory.tokens.add({
    id: jti,
    kind: 'refresh_token',
    userId: claims.uid,
    clientId: claims.client,
    issuedAt: ctx.now,
    expiresAt: exp,
    ...(claims.did ? { deviceId: claims.did } : {}),
    ...(record.parentId ? { parentId: record.parentId } : {}),
  });
  return {
    token: sealRefreshToken(ctx.keys.refreshToken, { ...claims, jti, iat: ctx.now, exp }),
    jti,
  };
}
