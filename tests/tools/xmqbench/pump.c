/* SPDX-License-Identifier: MIT */
/*
 * pump.c - the stream of messages that run and send measure: a message and
 * its header (magic, run, sequence number, send time), the record of what
 * arrived, and the pump that sends at each turn of the loop what flow
 * control allows, with the timer that notices silence.
 *
 * Flow control: QoS 1 is paced by the library itself (its queue of
 * max_queued messages and the peer's receive window: xmq_client_publish()
 * says -ENOBUFS when full). QoS 0 has no acknowledgement, so the publisher
 * keeps at most --window messages between its send and their arrival at the
 * subscriber; a message that has not arrived after a second of silence is
 * counted as lost and frees its place in the window.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include <uv.h>

#include "tests/tools/xmqbench/xmqbench.h"

int send_one(struct bench *b, uint32_t seq, uint64_t *t_sent)
{
	xmq_message_t m = {
		.topic = b->topic,
		.payload = b->payload,
		.payload_len = b->o.size,
		.qos = b->qos,
	};
	uint64_t t = now_ns();

	put32(b->payload, MAGIC);
	put32(b->payload + 4, b->run);
	put32(b->payload + 8, seq);
	memcpy(b->payload + 12, &t, 8);
	if (t_sent != NULL)
		*t_sent = t;
	return xmq_client_publish(b->cur->c, &m, NULL);
}

bool seen_mark(struct bench *b, uint32_t seq)
{
	uint8_t bit = (uint8_t)(1u << (seq % 8));
	bool was;

	if (b->seen == NULL || seq >= b->count)
		return false;
	was = b->seen[seq / 8] & bit;
	b->seen[seq / 8] |= bit;
	return was;
}

/* ---- the pump: one step per turn of the loop -------------------------------------- */

void tput_fill(struct bench *b)
{
	int err;

	while (b->sent < b->count && b->error == 0) {
		if (b->qos == 0 && b->window != 0 &&
		    b->sent - b->received - b->presumed_lost >= b->window)
			return;
		err = send_one(b, (uint32_t)b->sent, NULL);
		if (err == -ENOBUFS)
			return;  /* QoS 1: the library's queue is full until acks come */
		if (err != 0) {
			say("%s: publish: %s", b->cur->name, xmq_strerror(err));
			b->error = err;
			return;
		}
		if (b->sent == 0)
			b->t_first = now_ns();
		b->sent++;
	}
}

void lat_next(struct bench *b)
{
	int err;

	if (b->waiting || b->sent >= b->count || b->error != 0)
		return;
	b->wait_seq = (uint32_t)b->sent;
	err = send_one(b, b->wait_seq, &b->t_sent);
	if (err == -ENOBUFS)
		return;
	if (err != 0) {
		say("%s: publish: %s", b->cur->name, xmq_strerror(err));
		b->error = err;
		return;
	}
	b->waiting = true;
	b->sent++;
}

/* After the loop handled its I/O: send what the flow allows now. */
void on_check(uv_check_t *h)
{
	struct bench *b = h->data;

	if (b->mode == M_TPUT || b->mode == M_SEND)
		tput_fill(b);
	else if (b->mode == M_LAT)
		lat_next(b);
}

void on_tick(uv_timer_t *t)
{
	struct bench *b = t->data;
	uint64_t now = now_ns();

	switch (b->mode) {
	case M_PROBE:
		if (now - b->t_sent >= PROBE_NS && b->cur->connected) {
			b->t_sent = now;
			(void)send_one(b, 0, NULL);
		}
		break;
	case M_TPUT:
		if (b->qos == 0 && now - b->t_progress >= STALL0_NS &&
		    b->sent > b->received + b->presumed_lost) {
			b->presumed_lost = b->sent - b->received;
			b->t_progress = now;
		} else if (b->qos == 1 && now - b->t_progress >= STALL1_NS) {
			say("%s: QoS 1 stalled: %" PRIu64 " sent, %" PRIu64 " arrived",
			    b->cur->name, b->sent, b->received);
			b->error = -ETIMEDOUT;
		}
		break;
	case M_LAT:
		if (b->waiting && now - b->t_sent >= LAT_LOST_NS) {
			b->waiting = false;
			b->lat_lost++;
		}
		break;
	default:
		break;
	}
}
