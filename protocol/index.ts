export * from './errors.js';
export * from './stream.js';
export * from './rooms.js';
export * from './parse.js';
