/* Conversion from msgpack objects to JSON values (Jansson). */
#ifndef HV_JSON_H
#define HV_JSON_H

#include <jansson.h>
#include <msgpack.h>

/* Converts a msgpack object to a new JSON value, which the caller owns
 * (json_decref). Binary data becomes a lowercase hex string. Returns NULL
 * for what JSON cannot express: a map key that is not a string, an ext
 * object, or a string that is not valid UTF-8. */
json_t *hv_json_from_msgpack(const msgpack_object *object);

#endif
