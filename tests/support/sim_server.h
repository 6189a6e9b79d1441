#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/io/json.h"

namespace flowrun::test {

// Starts a simulator from tools/sim/ (by default http_sim.py, the scripted one) with its JSON
// script or scenario; stops it on destruction.
class SimServer {
 public:
  explicit SimServer(const Json& script, const std::string& simulator = "http_sim.py");
  SimServer(const SimServer&) = delete;
  SimServer& operator=(const SimServer&) = delete;
  ~SimServer();
  std::string url(const std::string& path = "") const;
  // The requests it received so far, oldest first.
  std::vector<Json> requests() const;
  // GET `path` (a simulator's own /_sim/... view of what happened) and parse the JSON answer.
  Json get_json(const std::string& path) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A fresh directory under the system temp dir, removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  void write(const std::string& name, const std::string& text) const;
  std::string read(const std::string& name) const;

 private:
  std::string path_;
};

}  // namespace flowrun::test
