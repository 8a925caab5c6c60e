// DeployParamFrom json:/POINTER against a webhook payload: the first line is
// the pointer, the rest the body. A pointer that parses prints back as
// itself, and resolving it in any document that parses neither crashes nor
// gives a value for a container.
#include <jansson.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "json_pointer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto fields = deploy::fuzz::split_fields(deploy::fuzz::as_text(data, size), 2);
  deploy::JsonPointer pointer;
  if (!deploy::parse_json_pointer(fields[0], &pointer).is_ok()) return 0;
  FUZZ_CHECK(deploy::format_json_pointer(pointer) == fields[0]);
  json_error_t error;
  json_t* document = json_loadb(fields[1].data(), fields[1].size(),
                                JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
  if (!document) return 0;
  deploy::PointedValue value = deploy::resolve_json_pointer(document, pointer);
  FUZZ_CHECK(value.kind != deploy::PointedValue::Kind::container || value.text.empty());
  json_decref(document);
  return 0;
}
