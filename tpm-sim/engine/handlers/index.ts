/** The handler table: command name -> handler. One import per command family. */
import type { HandlerTable } from '../handler.ts';
import { GetCapability, setImplemented, TestParms } from './capability.ts';
import { ContextLoad, ContextSave, EvictControl, FlushContext } from './context.ts';
import { Hash, HMAC } from './hash.ts';
import {
  Create,
  CreatePrimary,
  HierarchyChangeAuth,
  Import,
  Load,
  LoadExternal,
  ReadPublic,
} from './object.ts';
import { GetRandom, ReadClock } from './random.ts';
import { RSA_Decrypt, RSA_Encrypt } from './rsa.ts';
import { StartAuthSession } from './session.ts';
import { Sign, VerifySignature } from './signing.ts';
import { Shutdown, Startup } from './startup.ts';

export const HANDLERS: HandlerTable = {
  Startup,
  Shutdown,
  GetCapability,
  TestParms,
  GetRandom,
  ReadClock,
  StartAuthSession,
  ContextSave,
  ContextLoad,
  FlushContext,
  EvictControl,
  Hash,
  HMAC,
  Sign,
  VerifySignature,
  RSA_Encrypt,
  RSA_Decrypt,
  CreatePrimary,
  Create,
  Load,
  LoadExternal,
  ReadPublic,
  Import,
  HierarchyChangeAuth,
};

setImplemented(Object.keys(HANDLERS));
