// How the SDK exposes SQS's errors on the JSON protocol: `name` is the error
// shape ("QueueDoesNotExist"), `Code` the Query protocol's code that the
// bridge sends in x-amzn-query-error ("AWS.SimpleQueueService.NonExistentQueue").
import assert from 'node:assert/strict';

export async function rejectsWith(promise, { name, code, status, message }) {
  await assert.rejects(promise, (e) => {
    if (message !== undefined) assert.equal(e.message, message, 'error message');
    if (name !== undefined) assert.equal(e.name, name, `error name (${e.message})`);
    if (code !== undefined) assert.equal(e.Code, code, `error Code (${e.message})`);
    if (status !== undefined) assert.equal(e.$metadata?.httpStatusCode, status, 'HTTP status');
    return true;
  });
}

// An error that the SQS model does not list: name and Code are the same.
export const plainError = (code, status = 400) => ({ name: code, code, status });
