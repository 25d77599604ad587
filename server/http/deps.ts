import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ModelBatcher } from '../../codec/batcher.js';
import { CodecError } from '../../codec/pure/errors.js';
import type { CodecModel } from '../../codec/model.js';
import type { BrokenModel } from '../../codec/registry.js';
import type { Drain } from '../drain.js';
import type { HttpApiConfig } from './config.js';
import { admitJob } from './job-context.js';
import type { JobSlots } from './job-slots.js';

/** What the HTTP API shares with the rest of the process (models, batchers, auth). */
export interface HttpApiOptions {
  /** The current version of each model, by name. */
  models: Map<string, CodecModel>;
  /** Every loaded version (current ones included); a .tok is decoded by the one with its hash. Default: `models`. */
  versions?: CodecModel[];
  broken: BrokenModel[];
  /** The one batcher of a model (of any loaded version), shared with the stream server. */
  batcherFor: (model: CodecModel) => ModelBatcher;
  /** Model used when a request names none (default "default"). */
  defaultModel?: string;
  /** The stream server's auth check, run before every /v1 route; it must reject by throwing or replying. */
  authenticate?: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
  config?: Partial<HttpApiConfig>;
  /** The server's graceful drain: new jobs are refused once it begins, and it waits for running ones. */
  drain?: Drain;
}

/** Per-plugin state built once from the options. */
export interface RouteDeps extends HttpApiOptions {
  config: HttpApiConfig;
  slots: JobSlots;
}

export function findModel(deps: HttpApiOptions, name: string | undefined): CodecModel {
  const wanted = name ?? deps.defaultModel ?? 'default';
  const model = deps.models.get(wanted);
  if (!model) {
    const known = [...deps.models.keys()].join(', ') || 'none';
    throw new CodecError('model_not_found', `no model "${wanted}" (loaded: ${known})`);
  }
  return model;
}

/** A job route's onRequest hooks: the key check, then a job slot; both from the headers alone, before the body. */
export function jobHooks(deps: RouteDeps): ((request: FastifyRequest, reply: FastifyReply) => Promise<unknown>)[] {
  return [...(deps.authenticate ? [deps.authenticate] : []), admitJob(deps.slots)];
}
