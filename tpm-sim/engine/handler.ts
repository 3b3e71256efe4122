/** What a command handler sees and returns. Handlers live in handlers/, one file per family. */
import type { CommandName, ParamsOf, ResponseOf } from '../wire/commands.ts';
import type { NvIndex } from './nv.ts';
import type { TpmObject } from './objects.ts';
import type { Session } from './sessions.ts';
import type { Tpm } from './tpm.ts';

/** A handle from the handle area, resolved (Part 3 §5.4). */
export interface Entity {
  readonly handle: number;
  readonly name: Buffer;
  readonly authValue: Buffer;
  readonly object?: TpmObject;
  readonly session?: Session;
  /** An NV index named in the handle area (TPMI_RH_NV_INDEX, TPMI_RH_NV_AUTH, TPMI_DH_ENTITY). */
  readonly nv?: NvIndex;
  /** Failed authorizations count toward dictionary-attack lockout (Part 1 §19.8). */
  readonly daProtected: boolean;
}

export interface CommandContext {
  readonly tpm: Tpm;
  readonly cc: number;
  readonly locality: number;
  readonly handles: readonly Entity[];
}

export interface HandlerResult<R> {
  handles?: number[];
  response: R;
}

export type Handler<N extends CommandName> = (
  ctx: CommandContext,
  params: ParamsOf<N>,
) => HandlerResult<ResponseOf<N>> | Promise<HandlerResult<ResponseOf<N>>>;

export type HandlerTable = { [N in CommandName]?: Handler<N> };
