/** The handler table: command name -> handler. One import per command family. */
import type { HandlerTable } from '../handler.ts';
import { Certify, Quote } from './attestation.ts';
import { GetCapability, setImplemented, TestParms } from './capability.ts';
import { ContextLoad, ContextSave, EvictControl, FlushContext } from './context.ts';
import { CreateLoaded } from './create-loaded.ts';
import { Hash, HMAC } from './hash.ts';
import { NV_DefineSpace, NV_Read, NV_ReadPublic, NV_UndefineSpace, NV_Write } from './nv.ts';
import {
  Create,
  CreatePrimary,
  HierarchyChangeAuth,
  Import,
  Load,
  LoadExternal,
  ReadPublic,
} from './object.ts';
import { PCR_Extend, PCR_Read } from './pcr.ts';
import { PolicyGetDigest, PolicySecret } from './policy.ts';
import { GetRandom, ReadClock } from './random.ts';
import { RSA_Decrypt, RSA_Encrypt } from './rsa.ts';
import { StartAuthSession } from './session.ts';
import { Sign, VerifySignature } from './signing.ts';
import { Shutdown, Startup } from './startup.ts';
import { Unseal } from './unseal.ts';

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
  Unseal,
  CreateLoaded,
  Certify,
  Quote,
  PCR_Extend,
  PCR_Read,
  PolicySecret,
  PolicyGetDigest,
  NV_DefineSpace,
  NV_UndefineSpace,
  NV_ReadPublic,
  NV_Write,
  NV_Read,
};

setImplemented(Object.keys(HANDLERS));
