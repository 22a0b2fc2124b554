/* SPDX-License-Identifier: MIT */
/*
 * cobs.c - Consistent Overhead Byte Stuffing (Cheshire and Baker, 1999), the
 * byte stuffing that lets 0x00 delimit frames on the channel
 * (docs/protocol.md, section 1).
 *
 * The encoder is the paper's: the frame is followed by a phantom 0x00, so a
 * frame that ends with a full 254-byte block still gets a final 0x01 code,
 * and n bytes take at most n + n/254 + 1. The decoder accepts that form and
 * also the shorter one that some encoders emit (no final 0x01 after a full
 * block), because both are unambiguous and the frame's CRC, not its
 * stuffing, is what proves it intact.
 */
#include <errno.h>

#include "bridge/frame.h"

/*
 * The loop reads each input byte before it writes any output byte at or past
 * that input position, as long as the output starts at least n/254 + 1 bytes
 * before the input. frame_encode.c relies on this to build a frame at the end
 * of its wire buffer and stuff it forward in place, with one allocation per frame;
 * this is also why neither pointer is restrict.
 */
size_t xmq_cobs_encode(const uint8_t *in, size_t n, uint8_t *out)
{
	size_t code_at = 0;  /* where the current block's code byte goes */
	size_t pos = 1;
	uint8_t code = 1;    /* 1 + data bytes in the current block */
	size_t i;

	for (i = 0; i < n; i++) {
		uint8_t b = in[i];

		if (b != 0) {
			out[pos++] = b;
			code++;
		}
		if (b == 0 || code == 0xFF) {
			out[code_at] = code;
			code_at = pos++;
			code = 1;
		}
	}
	out[code_at] = code;
	return pos;
}

long xmq_cobs_decode(const uint8_t *in, size_t n, uint8_t *out)
{
	size_t i = 0;
	size_t pos = 0;

	/* The shortest encoding, of an empty frame, is one code byte. */
	if (n == 0)
		return -EBADMSG;
	while (i < n) {
		uint8_t code = in[i++];
		size_t k;

		if (code == 0 || (size_t)(code - 1) > n - i)
			return -EBADMSG;
		/* out trails in by at least one byte: copying forward is safe
		 * when they are the same buffer. */
		for (k = 1; k < code; k++) {
			if (in[i] == 0)
				return -EBADMSG;
			out[pos++] = in[i++];
		}
		/* A block shorter than 254 bytes stands for its data and a
		 * 0x00, except the last one, whose 0x00 is the phantom. */
		if (code != 0xFF && i < n)
			out[pos++] = 0;
	}
	return (long)pos;
}
