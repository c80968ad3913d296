import { describe, expect, it } from 'vitest';
import { AppError, ImageRejectedError, isAppError, NotFoundError, ValidationError } from '../index.js';

describe(AppError.name, () => {
  it('maps each code to its HTTP status and keeps the subclass identity', () => {
    const error = new ImageRejectedError(
      'IMAGE_TOO_MANY_PIXELS',
      'image is 61000 × 48000 pixels; the limit is 40 megapixels',
    );
    expect(error).toBeInstanceOf(ImageRejectedError);
    expect(error).toBeInstanceOf(AppError);
    expect(error.status).toBe(413);
    expect(error.name).toBe('ImageRejectedError');
    expect(isAppError(error)).toBe(true);
    expect(isAppError(new Error('plain'))).toBe(false);
  });

  it('serialises to the API error shape without the cause', () => {
    const error = new NotFoundError('image', 'abc');
    expect(JSON.parse(JSON.stringify(error))).toEqual({
      error: { code: 'NOT_FOUND', message: 'image "abc" was not found.', details: { kind: 'image', id: 'abc' } },
    });
    const withCause = new ValidationError('bad', [{ path: 'k', message: 'too big' }], { cause: new Error('secret') });
    expect(JSON.stringify(withCause)).not.toContain('secret');
    expect(withCause.status).toBe(400);
  });
});
