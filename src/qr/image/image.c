/*
 * image.c — QR symbols as pictures: libqrencode draws the module matrix,
 * libpng writes it as PNG, and the SVG is written here from the same
 * matrix (qr.h "images"; docs/qr.md).
 *
 * Owner: switch. A thin wrapper: no QR encoding of our own. It is built
 * as libhuitong-qrimage, so the core (and the parsers in it) never links
 * an image library. Never parses anything: a payload comes in made.
 */
#include <errno.h>
#include <png.h>
#include <qrencode.h>
#include <stdlib.h>
#include <string.h>

#include "huitong/qr.h"

#define PX_DEFAULT 8
#define QUIET_DEFAULT 4
#define OPTION_MAX 64

struct ht_qr_image {
	QRcode *code;
};

struct geometry {
	unsigned px, quiet, side; /* side: modules incl. both quiet zones */
};

/* The picture's sizes from the options; false when one is out of range. */
static bool geometry(const struct ht_qr_image *img,
		     const struct ht_qr_image_options *o, FILE *out,
		     struct geometry *g)
{
	HT_ASSERT(img != NULL && out != NULL);
	g->px = o && o->module_px ? o->module_px : PX_DEFAULT;
	g->quiet = o && o->quiet_modules ? o->quiet_modules : QUIET_DEFAULT;
	g->side = (unsigned)img->code->width + 2 * g->quiet;
	return g->px <= OPTION_MAX && g->quiet <= OPTION_MAX;
}

static QRecLevel level(const struct ht_qr_image_options *o)
{
	switch (o ? o->ec : HT_QR_EC_DEFAULT) {
	case HT_QR_EC_L: return QR_ECLEVEL_L;
	case HT_QR_EC_Q: return QR_ECLEVEL_Q;
	case HT_QR_EC_H: return QR_ECLEVEL_H;
	default: return QR_ECLEVEL_M;
	}
}

enum ht_err ht_qr_image_encode(const char *text, size_t len,
			       const struct ht_qr_image_options *o,
			       struct ht_qr_image **out)
{
	HT_ASSERT(out != NULL);
	*out = NULL;
	if (!text || len == 0 || len > INT32_MAX ||
	    (o && (unsigned)o->ec > HT_QR_EC_H))
		return HT_ERR_INVALID;
	struct ht_qr_image *img = calloc(1, sizeof *img);
	if (!img)
		return HT_ERR_NOMEM;
	/* Text without NUL: libqrencode picks numeric, alphanumeric and byte
	 * segments (case-sensitive). With a NUL: one byte segment. */
	char *copy = memchr(text, 0, len) ? NULL : strndup(text, len);
	errno = 0;
	img->code = copy ? QRcode_encodeString(copy, 0, level(o), QR_MODE_8, 1)
			 : QRcode_encodeData((int)len, (const unsigned char *)text,
					     0, level(o));
	int saved = errno;
	free(copy);
	if (!img->code) {
		free(img);
		return saved == ERANGE ? HT_ERR_LIMIT
		       : saved == EINVAL ? HT_ERR_INVALID : HT_ERR_NOMEM;
	}
	*out = img;
	return HT_OK;
}

void ht_qr_image_free(struct ht_qr_image *img)
{
	if (!img)
		return;
	QRcode_free(img->code);
	free(img);
}

unsigned ht_qr_image_width(const struct ht_qr_image *img)
{
	return (unsigned)img->code->width;
}

bool ht_qr_image_dark(const struct ht_qr_image *img, unsigned x, unsigned y)
{
	unsigned w = (unsigned)img->code->width;
	HT_ASSERT(x < w && y < w);
	return img->code->data[(size_t)y * w + x] & 1;
}

/* Whether pixel row/column r of the picture (quiet zone included, in
 * modules) is dark at module column c. */
static bool dark_at(const struct ht_qr_image *img, const struct geometry *g,
		    unsigned c, unsigned r)
{
	if (c < g->quiet || r < g->quiet || c >= g->side - g->quiet ||
	    r >= g->side - g->quiet)
		return false;
	return ht_qr_image_dark(img, c - g->quiet, r - g->quiet);
}

/* libpng reports errors by longjmp; the row is freed by the caller. */
static enum ht_err png_rows(png_structp png, png_infop info,
			    const struct ht_qr_image *img,
			    const struct geometry *g, png_bytep row)
{
	if (setjmp(png_jmpbuf(png)))
		return HT_ERR_IO;
	unsigned side_px = g->side * g->px;
	png_set_IHDR(png, info, side_px, side_px, 8, PNG_COLOR_TYPE_GRAY,
		     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
		     PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (unsigned r = 0; r < g->side; r++) {
		for (unsigned c = 0; c < g->side; c++)
			memset(row + (size_t)c * g->px,
			       dark_at(img, g, c, r) ? 0 : 255, g->px);
		for (unsigned k = 0; k < g->px; k++)
			png_write_row(png, row);
	}
	png_write_end(png, NULL);
	return HT_OK;
}

enum ht_err ht_qr_image_write_png(const struct ht_qr_image *img,
				  const struct ht_qr_image_options *o,
				  FILE *out)
{
	struct geometry g;
	if (!geometry(img, o, out, &g))
		return HT_ERR_INVALID;
	png_bytep row = malloc((size_t)g.side * g.px);
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL,
						  NULL, NULL);
	png_infop info = png ? png_create_info_struct(png) : NULL;
	enum ht_err e = HT_ERR_NOMEM;
	if (row && info) {
		png_init_io(png, out);
		e = png_rows(png, info, img, &g, row);
	}
	png_destroy_write_struct(&png, info ? &info : NULL);
	free(row);
	if (!e && fflush(out))
		e = HT_ERR_IO;
	return e;
}

enum ht_err ht_qr_image_write_svg(const struct ht_qr_image *img,
				  const struct ht_qr_image_options *o,
				  FILE *out)
{
	struct geometry g;
	if (!geometry(img, o, out, &g))
		return HT_ERR_INVALID;
	fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		     "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
		     "viewBox=\"0 0 %u %u\" width=\"%u\" height=\"%u\" "
		     "shape-rendering=\"crispEdges\">\n"
		     "<rect width=\"%u\" height=\"%u\" fill=\"#fff\"/>\n"
		     "<path fill=\"#000\" d=\"",
		g.side, g.side, g.side * g.px, g.side * g.px, g.side, g.side);
	/* one horizontal run of dark modules per subpath */
	for (unsigned r = 0; r < g.side; r++)
		for (unsigned c = 0; c < g.side;) {
			unsigned run = 0;
			while (c + run < g.side && dark_at(img, &g, c + run, r))
				run++;
			if (run)
				fprintf(out, "M%u %uh%uv1h-%uz", c, r, run, run);
			c += run ? run : 1;
		}
	fputs("\"/>\n</svg>\n", out);
	return fflush(out) || ferror(out) ? HT_ERR_IO : HT_OK;
}
