/*
 * fuzz_model.c — model files are outside input to every process that
 * scores (`huitong risk score`, the server's risk engine): any bytes
 * through ht_model_load_buffer. Each input is tried twice: as it is
 * (which a fuzzer rarely gets past the SM3 checksum), and with its
 * declared length and checksum fixed up, so mutations reach the
 * structural checks of counts, names, child indices, depths and floats.
 * Checked: a failed load says why and gives no model; a model that loads
 * has sane accessors and scores every probe row (zeros, NaNs, infinities,
 * values taken from the input) to a probability in [0, 1] — which, with
 * ASan, also proves the walker stays inside its arrays.
 *
 * Owner: risk. Corpus: tests/fuzz/corpus/fuzz_model (small valid models
 * and broken ones).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "huitong/crypto.h"
#include "huitong/model.h"

#define CHECK(e) ((e) ? (void)0 : abort())

/* Offsets of the file (docs/risk-model.md). */
#define DECLARED_LEN_AT 16
#define HEADER_BYTES 24

static void probe(const struct ht_model *m, const uint8_t *data,
		  size_t size)
{
	size_t n = ht_model_feature_count(m);
	CHECK(n >= 1 && n <= HT_MODEL_FEATURES_MAX);
	CHECK(ht_model_tree_count(m) >= 1);
	CHECK(ht_model_depth_max(m) <= HT_MODEL_DEPTH_MAX);
	CHECK(strlen(ht_model_version(m)) >= 1);
	for (size_t i = 0; i < n; i++)
		CHECK(ht_model_name_valid(ht_model_feature_name(m, i)));
	CHECK(ht_model_feature_name(m, n) == NULL);
	float *x = malloc(n * sizeof *x);
	CHECK(x != NULL);
	const float fill[] = {0.0f, NAN, INFINITY, -INFINITY, 1e30f, -1.0f};
	for (size_t k = 0; k < sizeof fill / sizeof fill[0] + 1; k++) {
		for (size_t i = 0; i < n; i++) {
			if (k < sizeof fill / sizeof fill[0]) {
				x[i] = fill[k];
			} else {
				uint32_t bits = 0;
				for (int b = 0; b < 4; b++)
					bits = bits << 8 |
					       data[(4 * i + b) % size];
				memcpy(&x[i], &bits, sizeof bits);
			}
		}
		double p = ht_model_score(m, x);
		CHECK(p >= 0.0 && p <= 1.0);
		CHECK(!isnan(ht_model_margin(m, x)));
	}
	free(x);
}

static void try_load(const uint8_t *data, size_t size, const uint8_t *orig,
		     size_t orig_size)
{
	struct ht_model *m = (struct ht_model *)1;
	char err[256] = "";
	enum ht_err e = ht_model_load_buffer(data, size, &m, err, sizeof err);
	if (e) {
		CHECK(m == (struct ht_model *)1); /* untouched on failure */
		CHECK(err[0] != '\0');
		CHECK(e == HT_ERR_CORRUPT || e == HT_ERR_LIMIT ||
		      e == HT_ERR_UNSUPPORTED || e == HT_ERR_NOMEM);
		return;
	}
	probe(m, orig, orig_size);
	ht_model_destroy(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	try_load(data, size, data, size ? size : 1);
	if (size < HEADER_BYTES + 32 || size > HT_MODEL_FILE_BYTES_MAX)
		return 0;
	uint8_t *fixed = malloc(size);
	CHECK(fixed != NULL);
	memcpy(fixed, data, size);
	for (int i = 0; i < 8; i++)
		fixed[DECLARED_LEN_AT + i] = (uint8_t)((uint64_t)size >> (8 * i));
	CHECK(ht_hash(HT_HASH_SM3, fixed, size - 32, fixed + size - 32) ==
	      HT_OK);
	try_load(fixed, size, data, size);
	free(fixed);
	return 0;
}
