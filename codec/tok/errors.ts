export type TokFormatErrorCode =
  | 'bad_magic'
  | 'unsupported_version'
  | 'header_crc'
  | 'bad_header'
  | 'chunk_crc'
  | 'bad_chunk'
  | 'code_out_of_range'
  | 'index_crc'
  | 'bad_index'
  | 'footer_crc'
  | 'bad_footer'
  | 'truncated'
  | 'trailing_data'
  | 'limit_exceeded';

/** A .tok file that is not what it claims to be: corrupted, cut short, or beyond the reader's limits. */
export class TokFormatError extends Error {
  readonly code: TokFormatErrorCode;
  /** Byte offset in the file where the problem was found, when one applies. */
  readonly offset: number | null;
  constructor(code: TokFormatErrorCode, message: string, offset: number | null = null) {
    super(offset === null ? `.tok ${code}: ${message}` : `.tok ${code} at byte ${offset}: ${message}`);
    this.name = 'TokFormatError';
    this.code = code;
    this.offset = offset;
  }
}
