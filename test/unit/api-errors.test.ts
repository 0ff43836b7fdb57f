import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { errorResponse } from '../../src/server/api-errors.js';

describe('errorResponse of a ValidationError', () => {
  it('says what is invalid without the colon that introduces the issues on a terminal', () => {
    const error = new ValidationError('schedule "api3"', [{ path: 'cron', message: '"0 2 * *" has 4 fields' }]);
    expect(error.message).toBe('invalid schedule "api3":\n  cron: "0 2 * *" has 4 fields');
    expect(errorResponse(error)).toEqual({
      statusCode: 400,
      body: {
        code: 'VALIDATION_FAILED',
        message: 'invalid schedule "api3"',
        errors: [{ path: 'cron', message: '"0 2 * *" has 4 fields' }],
      },
      unexpected: false,
    });
  });
});
