/** A file of a multipart request as Yoga hands it to resolvers (the Fetch API's File). */
export type UploadedFile = Pick<Blob, 'size' | 'arrayBuffer'>;

/**
 * Whether a value is an uploaded file: what the input bounds skip (a file is bounded by the body
 * limit and by the service that reads it, not walked as JSON) and what the chart upload reads.
 * JSON variables hold no functions, so a client cannot make a value look like one.
 */
export function isUploadedFile(value: unknown): value is UploadedFile {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as UploadedFile).size === 'number' &&
    typeof (value as UploadedFile).arrayBuffer === 'function'
  );
}
