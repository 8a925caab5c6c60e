// Errors as values: a Status is ok, or carries a message for a person.
#pragma once

#include <string>
#include <utility>

namespace deploy {

class Status {
 public:
  static Status ok() { return Status(); }
  static Status error(std::string message) { return Status(std::move(message)); }
  // An error with a code a caller decides on (job_store.h: kStoreBusy…).
  static Status error(std::string message, std::string code) {
    Status s(std::move(message));
    s.code_ = std::move(code);
    return s;
  }

  bool is_ok() const { return !failed_; }
  const std::string& message() const { return message_; }
  // "" unless the error was made with one.
  const std::string& code() const { return code_; }

 private:
  Status() = default;
  explicit Status(std::string message) : failed_(true), message_(std::move(message)) {}
  bool failed_ = false;
  std::string message_;
  std::string code_;
};

}  // namespace deploy
