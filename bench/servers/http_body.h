/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The fixed HTTP response body, shared by the servers (which send it) and
 * by mp-load (which checks every response against it byte for byte).
 */
#ifndef MP_HTTP_BODY_H
#define MP_HTTP_BODY_H

#define HTTP_BODY_LEN		64
#define HTTP_STR(x)		#x
#define HTTP_XSTR(x)		HTTP_STR(x)
#define HTTP_BODY_LEN_STR	HTTP_XSTR(HTTP_BODY_LEN)	/* "64" */
#define HTTP_BODY \
	"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.\n"

_Static_assert(sizeof(HTTP_BODY) - 1 == HTTP_BODY_LEN,
	       "HTTP_BODY must be HTTP_BODY_LEN bytes long");

#endif
