// The directives' table (directive_specs.h) and docs/directives.md say the
// same: every row is documented once and every documented directive has a
// row; each one's Context, its Default and its range ("From `MIN` to `MAX`")
// are the row's.
#include "directive_specs.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <optional>
// GCC 12 with -fsanitize=address warns falsely inside libstdc++'s regex
// compiler (maybe-uninitialized in std::function's move); -Werror fails it.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <regex>
#pragma GCC diagnostic pop
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "duration.h"
#include "text.h"
#include "unit_test.h"

namespace {

using deploy::DirectiveContext;
using deploy::DirectiveDefault;
using deploy::DirectiveSpec;
using deploy::DirectiveUnit;

std::string read_doc() {
  std::ifstream in(DEPLOY_DIRECTIVES_DOC);
  ck_assert_msg(in.good(), "cannot read %s", DEPLOY_DIRECTIVES_DOC);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// One "## NAME Directive" section of the doc.
struct DocSection {
  std::string context;  // the "Context:" cell
  std::string default_cell;
  std::string body;  // everything up to the next section
};

std::string unescape(std::string text) {
  for (const auto& [entity, c] : {std::pair{"&lt;", "<"}, std::pair{"&gt;", ">"}})
    for (size_t at; (at = text.find(entity)) != std::string::npos;)
      text.replace(at, std::string_view(entity).size(), c);
  return text;
}

// The cell of `row` ("| Default: | CELL |"), or nullopt.
std::optional<std::string> cell(const std::string& line, const std::string& row) {
  const std::string start = "| " + row + ": |";
  if (line.rfind(start, 0) != 0 || line.size() < start.size() + 2 || line.back() != '|')
    return std::nullopt;
  std::string value = line.substr(start.size(), line.size() - start.size() - 1);
  while (!value.empty() && value.front() == ' ') value.erase(0, 1);
  while (!value.empty() && value.back() == ' ') value.pop_back();
  return value;
}

// The sections by directive name ("<DeployTarget>" unescaped); a name
// documented twice is reported.
std::map<std::string, DocSection> sections_of(const std::string& doc,
                                              std::vector<std::string>* differences) {
  static const std::regex heading("^## (.+) Directive$");
  std::map<std::string, DocSection> sections;
  DocSection* current = nullptr;
  std::istringstream lines(doc);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_match(line, m, heading)) {
      const std::string name = unescape(m[1]);
      if (sections.count(name)) differences->push_back(name + " is documented twice");
      current = &sections[name];
      continue;
    }
    // Another heading: a part of the doc that is not a directive.
    if (line.rfind("# ", 0) == 0 || line.rfind("## ", 0) == 0) current = nullptr;
    if (!current) continue;
    if (auto c = cell(line, "Context")) current->context = unescape(*c);
    if (auto c = cell(line, "Default")) current->default_cell = *c;
    current->body += line + "\n";
  }
  return sections;
}

std::string doc_name(const DirectiveSpec& spec) {
  std::string name(spec.name);
  return name.front() == '<' ? name + ">" : name;  // httpd's "<DeployTarget" opens a section
}

const char* context_text(DirectiveContext context) {
  switch (context) {
    case DirectiveContext::server:
      return "server config";
    case DirectiveContext::server_or_target:
      return "server config, <DeployTarget>";
    case DirectiveContext::target_section:
      return "<DeployTarget>";
  }
  return "?";
}

// A value as the doc writes it, in the row's unit (microseconds, bytes, 0/1).
std::optional<int64_t> doc_value(DirectiveUnit unit, const std::string& text) {
  switch (unit) {
    case DirectiveUnit::count:
      if (auto n = deploy::parse_decimal(text)) return int64_t(*n);
      return std::nullopt;
    case DirectiveUnit::duration:
      return deploy::parse_duration(text);
    case DirectiveUnit::size:
      if (auto n = deploy::parse_size(text)) return int64_t(*n);
      return std::nullopt;
    case DirectiveUnit::flag: {
      std::string lower;
      for (char c : text) lower += deploy::lower_ascii(c);
      if (lower == "on") return 1;
      if (lower == "off") return 0;
      return std::nullopt;
    }
    case DirectiveUnit::text:
      return std::nullopt;
  }
  return std::nullopt;
}

bool bounded(const DirectiveSpec& spec) {
  return spec.unit == DirectiveUnit::count || spec.unit == DirectiveUnit::size ||
         (spec.unit == DirectiveUnit::duration && (spec.min > 0 || spec.max != deploy::kUnbounded));
}

void compare_default(const DirectiveSpec& spec, const DocSection& section,
                     std::vector<std::string>* differences) {
  const std::string name = doc_name(spec);
  const std::string& cell = section.default_cell;
  const std::string written = "`" + name + " ";
  const bool says_value = cell.rfind(written, 0) == 0;
  const bool says_none = cell.rfind("none", 0) == 0;
  switch (spec.default_kind) {
    case DirectiveDefault::value: {
      const size_t end = cell.find('`', written.size());
      if (!says_value || end == std::string::npos) {
        differences->push_back(name + ": the doc's Default is not `" + name + " VALUE`: " + cell);
        return;
      }
      const std::string value = cell.substr(written.size(), end - written.size());
      if (spec.unit == DirectiveUnit::text) {
        if (!spec.word || value != spec.word)
          differences->push_back(name + ": the doc's default is " + value + ", the table's " +
                                 (spec.word ? spec.word : "(none)"));
      } else if (doc_value(spec.unit, value) != spec.value) {
        differences->push_back(name + ": the doc's default is " + value + ", the table's " +
                               std::to_string(spec.value));
      }
      return;
    }
    case DirectiveDefault::decided:
      if (says_value || says_none || cell.empty())
        differences->push_back(name + ": the table decides the default at start-up, the doc says " +
                               cell);
      return;
    case DirectiveDefault::none:
      if (!says_none)
        differences->push_back(name + ": the table has no default, the doc says " + cell);
      return;
  }
}

void compare_range(const DirectiveSpec& spec, const DocSection& section,
                   std::vector<std::string>* differences) {
  static const std::regex range(R"([Ff]rom\s+`([^`]+)`(?:\s+[a-z]+)?\s+to\s+`([^`]+)`)");
  const std::string name = doc_name(spec);
  std::smatch m;
  const bool documented = std::regex_search(section.body, m, range);
  if (!bounded(spec)) {
    if (documented) differences->push_back(name + ": the doc gives a range the table has not");
    return;
  }
  if (!documented) {
    differences->push_back(name + ": the doc gives no range (From `MIN` to `MAX`)");
    return;
  }
  if (doc_value(spec.unit, m[1]) != spec.min || doc_value(spec.unit, m[2]) != spec.max)
    differences->push_back(name + ": the doc's range is " + m[1].str() + " to " + m[2].str() +
                           ", the table's " + std::to_string(spec.min) + " to " +
                           std::to_string(spec.max));
}

// What the doc and the table disagree on; empty when they agree.
std::vector<std::string> differences(const std::string& doc, std::span<const DirectiveSpec> table) {
  std::vector<std::string> out;
  std::map<std::string, DocSection> sections = sections_of(doc, &out);
  for (const DirectiveSpec& spec : table) {
    const std::string name = doc_name(spec);
    auto found = sections.find(name);
    if (found == sections.end()) {
      out.push_back(name + " is in the table and not documented");
      continue;
    }
    if (found->second.context != context_text(spec.context))
      out.push_back(name + ": the doc's Context is " + found->second.context + ", the table's " +
                    context_text(spec.context));
    compare_default(spec, found->second, &out);
    compare_range(spec, found->second, &out);
    sections.erase(found);
  }
  for (const auto& [name, section] : sections)
    out.push_back(name + " is documented and not in the table");
  return out;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) out += "\n  " + line;
  return out;
}

std::vector<DirectiveSpec> table_copy() {
  return {std::begin(deploy::kDirectiveSpecs), std::end(deploy::kDirectiveSpecs)};
}

DirectiveSpec& row(std::vector<DirectiveSpec>& table, std::string_view name) {
  auto found = std::find_if(table.begin(), table.end(),
                            [&](const DirectiveSpec& spec) { return spec.name == name; });
  ck_assert(found != table.end());
  return *found;
}

std::string replaced(std::string doc, const std::string& from, const std::string& to) {
  const size_t at = doc.find(from);
  ck_assert_msg(at != std::string::npos, "the doc has no '%s'", from.c_str());
  return doc.replace(at, from.size(), to);
}

// The doc with one directive's Default cell changed.
std::string with_default(const std::string& doc, const std::string& from, const std::string& to) {
  return replaced(doc, "| Default: | " + from, "| Default: | " + to);
}

START_TEST(the_doc_says_what_the_table_holds) {
  const std::vector<std::string> found = differences(read_doc(), deploy::kDirectiveSpecs);
  ck_assert_msg(found.empty(), "docs/directives.md and directive_specs.h differ:%s",
                joined(found).c_str());
}
END_TEST

START_TEST(the_table_is_whole) {
  std::vector<std::string_view> names;
  for (const DirectiveSpec& spec : deploy::kDirectiveSpecs) {
    ck_assert_msg(std::find(names.begin(), names.end(), spec.name) == names.end(),
                  "%.*s has two rows", int(spec.name.size()), spec.name.data());
    names.push_back(spec.name);
    ck_assert(spec.min <= spec.max);
    if (spec.default_kind == DirectiveDefault::value && spec.unit != DirectiveUnit::text &&
        spec.unit != DirectiveUnit::flag)
      ck_assert_msg(spec.value >= spec.min && spec.value <= spec.max,
                    "the default of %.*s is out of its range", int(spec.name.size()),
                    spec.name.data());
    ck_assert((spec.unit == DirectiveUnit::text && spec.default_kind == DirectiveDefault::value) ==
              (spec.word != nullptr));
  }
}
END_TEST

// The comparison fails when either side changes alone.
START_TEST(a_change_on_one_side_alone_is_found) {
  const std::string doc = read_doc();
  const auto differs = [](const std::string& text, const std::vector<DirectiveSpec>& table) {
    return !differences(text, table).empty();
  };
  const std::vector<DirectiveSpec> same = table_copy();
  ck_assert(!differs(doc, same));

  ck_assert(differs(with_default(doc, "`DeployHistory 1000`", "`DeployHistory 1001`"), same));
  ck_assert(differs(with_default(doc, "`DeployTimeout 300`", "`DeployTimeout 301`"), same));
  // Values are compared as the directive reads them, not as text.
  ck_assert(!differs(with_default(doc, "`DeployTimeout 300`", "`DeployTimeout 5mi`"), same));
  ck_assert(differs(with_default(doc, "`DeployMaxBody 64k`", "`DeployMaxBody 64m`"), same));
  ck_assert(differs(with_default(doc, "`DeploySync on`", "`DeploySync off`"), same));
  ck_assert(differs(with_default(doc, "`DeployStore file`", "`DeployStore postgresql`"), same));
  ck_assert(differs(replaced(doc, "From `1s` to `1h`", "From `1s` to `2h`"), same));
  ck_assert(differs(replaced(doc, "From `0` to `1000000`", "From `1` to `1000000`"), same));
  ck_assert(differs(replaced(doc, "## DeployUser Directive", "## DeployUsers Directive"), same));
  ck_assert(differs(replaced(doc, "| Default: | none: the job runs as httpd's `User` |",
                             "| Default: | `DeployUser www-data` |"),
                    same));
  ck_assert(differs(replaced(doc, "| Context: | &lt;DeployTarget&gt; |",
                             "| Context: | server config, &lt;DeployTarget&gt; |"),
                    same));

  std::vector<DirectiveSpec> table = table_copy();
  row(table, "DeployQueueLimit").value = 200;
  ck_assert(differs(doc, table));
  table = table_copy();
  row(table, "DeployConcurrency").max = 1000;
  ck_assert(differs(doc, table));
  table = table_copy();
  row(table, "DeployKillGrace").max = 3600 * deploy::directive_table::second;
  ck_assert(differs(doc, table));
  table = table_copy();
  row(table, "DeployStateDir").word = "state";
  ck_assert(differs(doc, table));
  table = table_copy();
  row(table, "DeployNodeName").default_kind = DirectiveDefault::none;
  ck_assert(differs(doc, table));
  table = table_copy();
  row(table, "DeployFilter").context = DirectiveContext::server_or_target;
  ck_assert(differs(doc, table));
  table = table_copy();
  table.push_back({"DeployNewThing", DirectiveContext::server, DirectiveUnit::flag,
                   DirectiveDefault::value, 0});
  ck_assert(differs(doc, table));
  table = table_copy();
  table.erase(table.begin());
  ck_assert(differs(doc, table));
}
END_TEST

// The policies' and the settings' defaults are the table's.
START_TEST(defaults_are_read_from_the_table) {
  static_assert(deploy::directive_default<uint32_t>("DeployHistory") == 1000);
  static_assert(deploy::directive_default<deploy::Micros>("DeployLease") == 15'000'000);
  static_assert(deploy::directive_default<bool>("DeploySync"));
  ck_assert_ptr_null(deploy::find_directive_spec("DeployNoSuchThing"));
  ck_assert_ptr_nonnull(deploy::find_directive_spec("<DeployTarget"));
}
END_TEST

Suite* directive_specs_suite() {
  Suite* suite = suite_create("directive_specs");
  TCase* doc = tcase_create("doc");
  tcase_add_test(doc, the_doc_says_what_the_table_holds);
  tcase_add_test(doc, the_table_is_whole);
  tcase_add_test(doc, a_change_on_one_side_alone_is_found);
  tcase_add_test(doc, defaults_are_read_from_the_table);
  suite_add_tcase(suite, doc);
  return suite;
}

}  // namespace

DEPLOY_TEST_SUITE(directive_specs_suite);
