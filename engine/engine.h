/* engine.h - the one header the server and tools include: audio bytes -> predictions.
 *
 * audio.h   decode + downmix + resample (reentrant)
 * model.h   load a model file, forward passes, test-time windows (model shared, workspace
 *           per thread)
 * scheduler.h  bounded job queue + dynamic batching on one dispatcher thread (thread-safe)
 * filters.h frequency responses of learned conv filters
 * detect.h  the event rule (a label above a threshold for a run of answers)
 * pcm_stream.h  live PCM bytes -> samples at a model's rate (resampler state kept)
 * stream.h  live streams: incremental passes over causal models, sliding windows for others
 * status.h  ac_status codes and messages
 */
#ifndef AC_ENGINE_H
#define AC_ENGINE_H

#include "audio.h"
#include "audio_raw.h"
#include "detect.h"
#include "filters.h"
#include "model.h"
#include "pcm_stream.h"
#include "scheduler.h"
#include "status.h"
#include "stream.h"

#endif
