/**
 * The device and the user a PRT session names, looked up when a grant redeems something issued
 * in that session (a session-signed request, an authorization code from a PRT cookie sign-in).
 * Each is recorded on the sign-in log entry as soon as it is found, then must still be enabled.
 */
import type { Device, User } from '../../directory/types.ts';
import { CloudRequestError } from '../../errors.ts';
import type { TokenContext } from '../context.ts';

export async function sessionDeviceAndUser(
  ctx: TokenContext,
  deviceId: string,
  userId: string,
): Promise<{ device: Device; user: User }> {
  const device = await ctx.cloud.directory.devices.get(deviceId);
  if (!device) throw new CloudRequestError(700003);
  ctx.signIn.device = device;
  if (!device.enabled) throw new CloudRequestError(135011);
  const user = await ctx.cloud.directory.users.get(userId);
  if (!user) throw new CloudRequestError(50034);
  ctx.signIn.user = user;
  if (!user.enabled) throw new CloudRequestError(50057);
  return { device, user };
}
