#include "support/sim_server.h"

#include <boost/process.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "engine/io/http_client.h"

namespace bp = boost::process;

namespace flowrun::test {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "flowrun-test-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void TempDir::write(const std::string& name, const std::string& text) const {
  std::ofstream(file(name), std::ios::binary) << text;
}

std::string TempDir::read(const std::string& name) const {
  std::ifstream in(file(name), std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct SimServer::Impl {
  TempDir dir;
  bp::ipstream out;
  bp::child child;
  int port = 0;
};

SimServer::SimServer(const Json& script, const std::string& simulator) : impl_(std::make_unique<Impl>()) {
  impl_->dir.write("script.json", script.dump());
  impl_->child = bp::child(bp::search_path("python3"), std::string(FLOWRUN_SOURCE_DIR) + "/tools/sim/" + simulator,
                           impl_->dir.file("script.json"), "--log", impl_->dir.file("requests.jsonl"), "--lifetime",
                           "120", bp::std_out > impl_->out);
  std::string line;
  if (!std::getline(impl_->out, line)) throw std::runtime_error(simulator + " did not start");
  impl_->port = std::stoi(line);
}

SimServer::~SimServer() {
  std::error_code ec;
  impl_->child.terminate(ec);
  impl_->child.wait(ec);
}

std::string SimServer::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(impl_->port) + path;
}

std::vector<Json> SimServer::requests() const {
  std::vector<Json> out;
  std::istringstream lines(impl_->dir.read("requests.jsonl"));
  std::string line;
  while (std::getline(lines, line))
    if (!line.empty()) out.push_back(Json::parse(line));
  return out;
}

Json SimServer::get_json(const std::string& path) const {
  CurlHttpClient http;
  HttpRequest req;
  req.url = url(path);
  CancelToken never;
  return Json::parse(http.send(req, never).body);
}

}  // namespace flowrun::test
