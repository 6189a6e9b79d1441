// End-to-end: the shipped workflows/video_batch.yaml, run by the real binary against the Vast.ai
// simulator (tools/sim/vast_sim.py). What must hold whatever happens: N inputs, exactly N
// instances created and N destroyed, result URLs extracted, every log line printed once.
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "engine/io/json.h"
#include "support/run_cli.h"
#include "support/sim_server.h"

using flowrun::Json;
using flowrun::test::CliResult;
using flowrun::test::FlowrunProcess;
using flowrun::test::run_flowrun;
using flowrun::test::SimServer;
using flowrun::test::TempDir;
using namespace std::chrono_literals;

namespace {

const char* const kInputs[] = {"alpha.mp4", "bravo.mp4", "charlie.mp4"};

Json scenario(Json extra = Json::object()) {
  Json s = {{"api_key", "test-key"},
            {"offers", Json::array({
                           {{"id", 301},
                            {"gpu_name", "RTX 4090"},
                            {"num_gpus", 1},
                            {"dph_total", 0.42},
                            {"reliability", 0.995},
                            {"disk_space", 200}},
                           {{"id", 302},
                            {"gpu_name", "RTX 4090"},
                            {"num_gpus", 1},
                            {"dph_total", 0.35},
                            {"reliability", 0.99},
                            {"disk_space", 200}},
                           {{"id", 303},
                            {"gpu_name", "RTX 3090"},
                            {"num_gpus", 1},
                            {"dph_total", 0.20},
                            {"reliability", 0.99},
                            {"disk_space", 200}},
                           {{"id", 304},
                            {"gpu_name", "RTX 4090"},
                            {"num_gpus", 1},
                            {"dph_total", 0.90},
                            {"reliability", 0.99},
                            {"disk_space", 200}},
                       })},
            {"loading_seconds", 0.3},
            {"line_interval", 0.1},
            {"log_upload_misses", 1}};
  s.update(extra);
  return s;
}

struct Batch {
  TempDir dir;
  std::map<std::string, std::string> env;

  explicit Batch(const SimServer& sim) {
    std::filesystem::create_directories(dir.file("in"));
    for (const char* name : kInputs) dir.write(std::string("in/") + name, std::string("video ") + name);
    env = {{"FLOWRUN_STATE_DIR", dir.file("state")}, {"VAST_URL", sim.url()}, {"VAST_API_KEY", "test-key"}};
  }

  std::vector<std::string> args(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a = {std::string(FLOWRUN_SOURCE_DIR) + "/workflows/video_batch.yaml",
                                  "--set",
                                  "provider=vastai",
                                  "--set",
                                  "input_dir=" + dir.file("in"),
                                  "--set",
                                  "output_dir=" + dir.file("out"),
                                  "--set",
                                  "poll_interval=200ms",
                                  "--set",
                                  "concurrency=3"};
    for (auto& e : extra) a.push_back(std::move(e));
    return a;
  }

  Json results() const { return Json::parse(dir.read("out/results.json")); }
};

Json sim_state(const SimServer& sim) { return sim.get_json("/_sim/state"); }

Json result_for(const Json& results, const std::string& name) {
  for (const auto& r : results["results"])
    if (r["input"].get<std::string>().find(name) != std::string::npos) return r;
  FAIL("no result for " << name);
  return {};
}

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

// Lines of `text` holding both `a` and `b`.
size_t lines_with(const std::string& text, const std::string& a, const std::string& b) {
  size_t n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.find(a) != std::string::npos && line.find(b) != std::string::npos) ++n;
  return n;
}

// The step path ("videos[1]") of the item that processed `input`.
std::string item_path(const std::string& out, const std::string& input) {
  std::smatch m;
  std::regex item("\\[(videos\\[\\d\\])\\.result\\] \\| starting job for [^\\n]*" +
                  std::regex_replace(input, std::regex("[.^$|()\\[\\]{}*+?\\\\]"), "\\$&"));
  if (!std::regex_search(out, m, item)) return "(no item for " + input + ")";
  return m[1].str();
}

// Every line of every instance's log appears exactly once in flowrun's output (a progress line as its bar).
void check_each_line_once(const std::string& out, const Json& results) {
  for (const auto& r : results["results"]) {
    if (r["status"] != "succeeded") continue;
    std::string input = r["input"];
    std::string stem = std::filesystem::path(input).stem().string();
    CHECK(count_of(out, "| starting job for " + input) == 1);
    for (int k = 1; k <= 4; ++k) {
      std::smatch m;
      std::string frame = "frame " + std::to_string(k) + "/4";
      // The same frame lines come from each instance; tell them apart by the step path.
      std::regex item("\\[(videos\\[\\d\\])\\.result\\] \\| starting job for " +
                      std::regex_replace(input, std::regex("[.^$|()\\[\\]{}*+?\\\\]"), "\\$&"));
      REQUIRE(std::regex_search(out, m, item));
      // A progress line is shown once, as the bar, not as itself too.
      CHECK(count_of(out, "[" + m[1].str() + ".result] | " + frame) == 0);
      CHECK(lines_with(out, "[" + m[1].str() + ".result] progress [", "(" + frame + ")") == 1);
    }
    CHECK(count_of(out, "| RESULT_URL=https://results.sim/" + stem + ".mp4") == 1);
  }
}

void check_no_instance_left(const Json& state, size_t created) {
  CHECK(state["created"].size() == created);
  CHECK(state["live"].empty());
  CHECK(state["destroyed"].size() + state["vanished"].size() == created);
}

}  // namespace

TEST_CASE("video_batch on Vast.ai: N inputs, N instances, N destroyed, result URLs captured", "[e2e][vastai]") {
  // Logs return a 4-line window only, and a poll sees about 2 new lines.
  SimServer sim(scenario({{"log_tail_max", 4}, {"line_interval", 0.5}}), "vast_sim.py");
  Batch batch(sim);
  CliResult r = run_flowrun(batch.args(), batch.env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);

  Json results = batch.results();
  CHECK(results["succeeded"] == 3);
  for (const char* name : kInputs) {
    Json row = result_for(results, name);
    CHECK(row["status"] == "succeeded");
    CHECK(row["result_url"] == "https://results.sim/" + std::filesystem::path(name).stem().string() + ".mp4");
    CHECK(row["price_per_hour"] == Approx(0.35));  // the cheapest RTX 4090 under the cap
  }
  check_each_line_once(r.err, results);
  CHECK(r.err.find("some lines may not have been seen") == std::string::npos);
  check_no_instance_left(sim_state(sim), 3);
  CHECK(r.err.find("test-key") == std::string::npos);  // the key never reaches a log line

  // The requests follow the documented shapes.
  bool searched = false, created = false;
  for (const auto& req : sim.requests()) {
    if (req["path"] == "/logs/" || req["path"].get<std::string>().rfind("/logs/", 0) == 0) {
      CHECK(!req["headers"].contains("Authorization"));  // the log upload is fetched without auth
      continue;
    }
    if (req["path"] == "/_sim/state") continue;
    CHECK(req["headers"]["Authorization"] == "Bearer test-key");
    if (req["method"] == "POST" && req["path"] == "/api/v0/bundles/") {
      Json q = Json::parse(req["body"].get<std::string>());
      CHECK(q["gpu_name"]["eq"] == "RTX 4090");
      CHECK(q["dph_total"]["lte"] == Approx(0.6));
      searched = true;
    }
    if (req["method"] == "PUT" && req["path"] == "/api/v0/asks/302/") {
      Json b = Json::parse(req["body"].get<std::string>());
      CHECK(b["label"].get<std::string>().rfind("flowrun:", 0) == 0);
      CHECK(b["onstart"].is_string());
      CHECK(b["env"]["INPUT_VIDEO"].is_string());
      created = true;
    }
  }
  CHECK(searched);
  CHECK(created);
}

TEST_CASE("video_batch on Vast.ai rides out 429s, 5xx, a lost create response and a vanished offer", "[e2e][vastai]") {
  Json faults = {{"search", Json::array({Json{{"status", 429}, {"retry_after", 1}}, 503})},
                 {"create", {429, 429, 502}},
                 {"show", {503, 429, 502}},
                 {"list", {429}},
                 {"logs", {502, 429}},
                 {"destroy", {429, 503}},
                 {"create_lost", 1}};
  SimServer sim(scenario({{"faults", faults}, {"vanished_offers", {302}}, {"delay", {{"show", 0.05}}}}), "vast_sim.py");
  Batch batch(sim);
  CliResult r = run_flowrun(batch.args(), batch.env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  Json results = batch.results();
  CHECK(results["succeeded"] == 3);
  for (const char* name : kInputs) CHECK(result_for(results, name)["price_per_hour"] == Approx(0.42));  // 302 was gone
  CHECK(r.err.find("offer 302 is no longer available") != std::string::npos);
  check_each_line_once(r.err, results);
  // The lost create made an instance all the same: it was found by its label, not rented twice.
  check_no_instance_left(sim_state(sim), 3);
}

TEST_CASE("video_batch on Vast.ai: a failing job, a stuck one and lost instances still leave nothing running",
          "[e2e][vastai]") {
  Json jobs = {{"alpha", {{"behaviour", "fail"}}},
               {"bravo", {{"behaviour", "hang"}}},
               {"charlie", {{"behaviour", "exit"}, {"after", 1.0}, {"times", 1}}},
               {"delta", {{"behaviour", "stuck_loading"}, {"times", 1}}}};
  SimServer sim(scenario({{"jobs", jobs}}), "vast_sim.py");
  Batch batch(sim);
  batch.dir.write("in/delta.mp4", "video delta");
  CliResult r = run_flowrun(batch.args({"--set", "job_timeout=5s", "--set", "max_recoveries=1", "--set",
                                        "ready_timeout=1s", "--set", "concurrency=4"}),
                            batch.env);
  INFO(r.err);
  CHECK(r.exit_code == 3);  // partial: the workflow tolerates failed items and reports them
  CHECK(r.out.find("partial") != std::string::npos);
  Json results = batch.results();
  CHECK(results["failed"] == 2);
  Json alpha = result_for(results, "alpha"), bravo = result_for(results, "bravo"),
       charlie = result_for(results, "charlie");
  CHECK(alpha["status"] == "failed");
  CHECK(alpha["error"].get<std::string>().find("Traceback") != std::string::npos);
  CHECK(bravo["status"] == "failed");
  CHECK(bravo["error"].get<std::string>().find("no result after") != std::string::npos);
  // charlie's first instance exited before the marker; a second one finished the job.
  CHECK(charlie["status"] == "succeeded");
  CHECK(charlie["result_url"] == "https://results.sim/charlie.mp4");
  CHECK(r.err.find("re-provisioning (1 of 1)") != std::string::npos);
  // delta's first instance never left "loading": destroyed after ready_timeout, a second one rented.
  CHECK(result_for(results, "delta")["status"] == "succeeded");
  CHECK(r.err.find("was still loading after 1s; destroyed it") != std::string::npos);
  check_no_instance_left(sim_state(sim), 6);
}

TEST_CASE("video_batch on Vast.ai: SIGKILL mid-run, then resume, rents no second instance", "[e2e][vastai][durable]") {
  SimServer sim(scenario({{"line_interval", 0.6}}), "vast_sim.py");
  Batch batch(sim);
  std::string run_id;
  {
    FlowrunProcess run(batch.args(), batch.env);
    for (int i = 0; i < 200 && sim_state(sim)["created"].size() < 3; ++i) std::this_thread::sleep_for(50ms);
    std::this_thread::sleep_for(700ms);  // the instances are running and their logs being followed
    run.signal(SIGKILL);
    CliResult killed = run.wait();
    std::smatch m;
    REQUIRE(std::regex_search(killed.err, m, std::regex("run (\\S+): video_batch")));
    run_id = m[1];
  }
  REQUIRE(sim_state(sim)["created"].size() == 3);
  CHECK(sim_state(sim)["live"].size() == 3);  // a killed monitor leaves its instances running...

  CliResult resumed = run_flowrun({"resume", run_id}, batch.env);
  INFO(resumed.err);
  REQUIRE(resumed.exit_code == 0);
  Json results = batch.results();
  CHECK(results["succeeded"] == 3);
  for (const char* name : kInputs)
    CHECK(result_for(results, name)["result_url"] ==
          "https://results.sim/" + std::filesystem::path(name).stem().string() + ".mp4");
  check_no_instance_left(sim_state(sim), 3);  // ...and the resumed run found them: none rented twice
}

TEST_CASE("video_batch with the local provider runs the bundled job on the sample videos", "[e2e][local]") {
  TempDir dir;
  CliResult r = run_flowrun(
      {std::string(FLOWRUN_SOURCE_DIR) + "/workflows/video_batch.yaml", "--set", "input_dir=" + dir.file("samples"),
       "--set", "output_dir=" + dir.file("out"), "--set", "poll_interval=200ms"},
      {{"FLOWRUN_STATE_DIR", dir.file("state")}, {"JOB_STAGE_DELAY", "0.05"}});
  INFO(r.err);
  // input_dir is not the default, so no samples are made: an empty folder is an empty batch.
  REQUIRE(r.exit_code == 0);
  CHECK(Json::parse(dir.read("out/results.json"))["results"].empty());

  std::filesystem::create_directories(dir.file("videos"));
  for (const char* name : kInputs) dir.write(std::string("videos/") + name, std::string("frames of ") + name);
  r = run_flowrun(
      {std::string(FLOWRUN_SOURCE_DIR) + "/workflows/video_batch.yaml", "--set", "input_dir=" + dir.file("videos"),
       "--set", "output_dir=" + dir.file("out"), "--set", "poll_interval=200ms"},
      {{"FLOWRUN_STATE_DIR", dir.file("state")}, {"JOB_STAGE_DELAY", "0.05"}});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  Json results = Json::parse(dir.read("out/results.json"));
  CHECK(results["succeeded"] == 3);
  for (const auto& row : results["results"]) {
    std::string url = row["result_url"];
    REQUIRE(url.rfind("file://", 0) == 0);
    CHECK(std::filesystem::exists(url.substr(7)));  // the job wrote what it announced
  }
  // Every local instance was destroyed: nothing left under the state directory.
  CHECK(std::filesystem::is_empty(dir.file("state/local-instances")));
}

TEST_CASE("video_batch with the local provider: SIGKILL, then resume, adopts the running local instances",
          "[e2e][local][durable]") {
  TempDir dir;
  std::filesystem::create_directories(dir.file("videos"));
  for (const char* name : kInputs) dir.write(std::string("videos/") + name, std::string("frames of ") + name);
  std::map<std::string, std::string> env{{"FLOWRUN_STATE_DIR", dir.file("state")}, {"JOB_STAGE_DELAY", "0.4"}};
  std::vector<std::string> args = {std::string(FLOWRUN_SOURCE_DIR) + "/workflows/video_batch.yaml",
                                   "--set",
                                   "input_dir=" + dir.file("videos"),
                                   "--set",
                                   "output_dir=" + dir.file("out"),
                                   "--set",
                                   "poll_interval=200ms"};
  CliResult killed;
  {
    FlowrunProcess run(args, env);
    auto instances = [&] {
      std::error_code ec;
      auto it = std::filesystem::directory_iterator(dir.file("state/local-instances"), ec);
      return ec ? 0 : std::distance(it, std::filesystem::directory_iterator());
    };
    for (int i = 0; i < 200 && instances() < 2; ++i) std::this_thread::sleep_for(25ms);
    std::this_thread::sleep_for(300ms);
    run.signal(SIGKILL);
    killed = run.wait();
  }
  std::smatch m;
  REQUIRE(std::regex_search(killed.err, m, std::regex("run (\\S+): video_batch")));
  CliResult resumed = run_flowrun({"resume", m[1]}, env);
  INFO(killed.err + resumed.err);
  REQUIRE(resumed.exit_code == 0);
  CHECK(Json::parse(dir.read("out/results.json"))["succeeded"] == 3);
  // The instances outlived the killed monitor and were adopted: three made in all, none left.
  CHECK(count_of(killed.err, " created (label ") + count_of(resumed.err, " created (label ") == 3);
  CHECK(std::filesystem::is_empty(dir.file("state/local-instances")));
}

TEST_CASE("video_batch lists its inputs from an S3-compatible bucket (ListObjectsV2, signed, two pages)",
          "[e2e][vastai][s3]") {
  // Shapes: shared/API-SHAPES.md section 4 (minio's ListObjectsV2 response).
  Json s3 = {{"GET /media", Json::array({{{"body", R"X(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>media</Name><Prefix>in/</Prefix>
<KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><NextContinuationToken>tok-1</NextContinuationToken>
<Contents><Key>in/alpha.mp4</Key><LastModified>2026-01-02T03:04:05.000Z</LastModified><ETag>"d41d8cd98f00b204e9800998ecf8427e"</ETag><Size>10</Size><StorageClass>STANDARD</StorageClass></Contents>
<Contents><Key>in/notes.txt</Key><Size>3</Size></Contents>
</ListBucketResult>)X"}},
                                         {{"body", R"X(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>media</Name><Prefix>in/</Prefix>
<ContinuationToken>tok-1</ContinuationToken><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>
<Contents><Key>in/bravo &amp; co.mp4</Key><Size>10</Size></Contents>
</ListBucketResult>)X"}}})}};
  SimServer bucket(s3);
  SimServer sim(scenario(), "vast_sim.py");
  Batch batch(sim);
  batch.env["S3_ACCESS_KEY_ID"] = "AKIDEXAMPLE";
  batch.env["S3_SECRET_ACCESS_KEY"] = "s3-secret-value";
  CliResult r = run_flowrun(batch.args({"--set", "input_bucket=media", "--set", "input_prefix=in/", "--set",
                                        "s3_endpoint=" + bucket.url(), "--set", "s3_region=us-west-004"}),
                            batch.env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  Json results = batch.results();
  REQUIRE(results["results"].size() == 2);  // notes.txt is not a video
  CHECK(results["results"][0]["input"] == bucket.url("/media/in/alpha.mp4"));
  CHECK(results["results"][1]["input"] == bucket.url("/media/in/bravo%20%26%20co.mp4"));
  CHECK(results["results"][1]["result_url"] == "https://results.sim/bravo%20%26%20co.mp4");
  check_no_instance_left(sim_state(sim), 2);

  auto reqs = bucket.requests();
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[0]["query"].get<std::string>().find("list-type=2") != std::string::npos);
  CHECK(reqs[0]["query"].get<std::string>().find("prefix=in%2F") != std::string::npos);
  CHECK(reqs[1]["query"].get<std::string>().find("continuation-token=tok-1") != std::string::npos);
  std::string auth = reqs[0]["headers"]["Authorization"];
  CHECK(auth.rfind("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/", 0) == 0);
  CHECK(auth.find("/us-west-004/s3/aws4_request") != std::string::npos);
  CHECK(r.err.find("s3-secret-value") == std::string::npos);
}

// The seed's job format: no RESULT_URL= line; progress lines, URLs of other folders around the
// result ("Uploading to B2... URL" or the bare URL), then the marker.
const char* const kBucket = "https://noxfvr-videos.s3.us-west-004.backblazeb2.com";

TEST_CASE(
    "video_batch, the seed's log format: the last URL under output/ or both/ is the result, progress shown once per "
    "change, log_dir",
    "[e2e][vastai][seed]") {
  Json jobs = {{"bravo", {{"url", "bare"}}}, {"charlie", {{"folder", "both"}}}};
  SimServer sim(scenario({{"log_format", "seed"}, {"jobs", jobs}}), "vast_sim.py");
  Batch batch(sim);
  CliResult r = run_flowrun(batch.args({"--set", "log_dir=" + batch.dir.file("logs")}), batch.env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  Json results = batch.results();
  CHECK(results["succeeded"] == 3);
  // The download URL (input/) before it and the log URL (logs/) after it are not results.
  CHECK(result_for(results, "alpha")["result_url"] == std::string(kBucket) + "/output/alpha_result.mp4");
  CHECK(result_for(results, "bravo")["result_url"] == std::string(kBucket) + "/output/bravo_result.mp4");
  CHECK(result_for(results, "charlie")["result_url"] == std::string(kBucket) + "/both/charlie_result.mp4");
  check_no_instance_left(sim_state(sim), 3);

  for (const char* name : kInputs) {
    const std::string item = item_path(r.err, name);
    INFO(name << " is " << item);
    // "progress: 10%" (twice), 35%, 60%, 100%: four bars, and no raw progress line.
    CHECK(lines_with(r.err, "[" + item + ".result] progress [", "%") == 4);
    CHECK(lines_with(r.err, "[" + item + ".result] progress [", "(10%)") == 1);
    CHECK(lines_with(r.err, "[" + item + ".result] | progress:", "%") == 0);
    CHECK(count_of(r.err, "[" + item + ".result] | Uploading to B2... ") == (std::string(name) == "bravo.mp4" ? 0 : 1));

    // Each instance's whole log, as it arrived, readable by its owner only.
    const std::string log = batch.dir.file(std::string("logs/") + name + ".log");
    REQUIRE(std::filesystem::exists(log));
    struct stat st {};
    REQUIRE(::stat(log.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    const std::string text = batch.dir.read(std::string("logs/") + name + ".log");
    CHECK(count_of(text, "starting job for ") == 1);
    CHECK(count_of(text, "progress: 10%\n") == 2);
    CHECK(count_of(text, "progress: 100%\n") == 1);
    CHECK(count_of(text, "VASTAI_PIPELINE_COMPLETED_SUCCESSFULLY\n") == 1);
  }
}

TEST_CASE(
    "video_batch, the seed's log format: a traceback is reported with its lines, a URL outside output/ is no result",
    "[e2e][vastai][seed]") {
  Json jobs = {{"alpha", {{"behaviour", "fail"}}}, {"charlie", {{"folder", "scratch"}}}};
  SimServer sim(scenario({{"log_format", "seed"}, {"jobs", jobs}}), "vast_sim.py");
  Batch batch(sim);
  CliResult r = run_flowrun(batch.args(), batch.env);
  INFO(r.err);
  CHECK(r.exit_code == 3);  // partial: failed items are tolerated and reported
  Json results = batch.results();
  CHECK(results["succeeded"] == 1);
  CHECK(results["failed"] == 2);

  // The error is one line naming the traceback's last line; the lines around it are beside it.
  Json alpha = result_for(results, "alpha");
  CHECK(alpha["status"] == "failed");
  const std::string error = alpha["error"];
  CHECK(error.rfind("the log matched fail_on 'Traceback (most recent call last)': RuntimeError: CUDA out of memory",
                    0) == 0);
  CHECK(error.find('\n') == std::string::npos);
  REQUIRE(alpha["error_context"].is_array());
  const Json& context = alpha["error_context"];
  REQUIRE(context.size() == 10);  // start, download, progress x2, then the traceback's 6 lines
  CHECK(context[0].get<std::string>().rfind("starting job for ", 0) == 0);
  CHECK(context[3] == "progress: 10%");
  CHECK(context[4] == "Traceback (most recent call last):");
  CHECK(context[5] == "  File \"/workspace/process.py\", line 88, in <module>");
  CHECK(context[9] == "RuntimeError: CUDA out of memory");
  // The summary table shows them under the failed row.
  CHECK(r.err.find("    | RuntimeError: CUDA out of memory") != std::string::npos);

  // charlie's only URLs are outside output/ and both/: the marker came, the result did not.
  Json charlie = result_for(results, "charlie");
  CHECK(charlie["status"] == "failed");
  CHECK(charlie["error"].get<std::string>().find("result_url was never captured") != std::string::npos);
  CHECK(charlie.value("result_url", Json()).is_null());
  CHECK(result_for(results, "bravo")["result_url"] == std::string(kBucket) + "/output/bravo_result.mp4");
  check_no_instance_left(sim_state(sim), 3);
}

TEST_CASE("video_batch --set input=...: one input, one instance", "[e2e][vastai][seed]") {
  SimServer sim(scenario({{"log_format", "seed"}}), "vast_sim.py");
  Batch batch(sim);
  CliResult r = run_flowrun(batch.args({"--set", "input=" + batch.dir.file("in/bravo.mp4")}), batch.env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  Json results = batch.results();
  REQUIRE(results["results"].size() == 1);
  CHECK(results["results"][0]["input"] == batch.dir.file("in/bravo.mp4"));
  CHECK(results["results"][0]["result_url"] == std::string(kBucket) + "/output/bravo_result.mp4");
  check_no_instance_left(sim_state(sim), 1);
}

// The fault suite (tag [faults]): every kind of trouble the simulators can make, at once, and the
// invariants that must hold through it: nothing created twice, everything created destroyed,
// every result recorded once, every failure named.

TEST_CASE("faults: resets, cut-off JSON, 429s and 5xx on every Vast call: 3 inputs, 3 instances, 3 destroyed",
          "[e2e][vastai][faults]") {
  // Up to three in a row of a kind: what the provider's own retries absorb, so no job fails.
  const Json faults = {
      {"search", {429, "reset", "malformed"}}, {"create", {"malformed", {{"status", 429}, {"retry_after", 1}}}},
      {"show", {"malformed", "reset", 503}},   {"list", {"reset", "malformed"}},
      {"logs", {"reset", "malformed", 500}},   {"destroy", {"reset", "malformed", 500}}};
  SimServer sim(scenario({{"faults", faults}}), "vast_sim.py");
  Batch batch(sim);
  CliResult r = run_flowrun(batch.args(), batch.env);
  INFO(r.err);
  CHECK(r.exit_code == 0);
  Json results = batch.results();
  CHECK(results["succeeded"] == 3);
  for (const char* name : kInputs)
    CHECK(result_for(results, name)["result_url"] ==
          "https://results.sim/" + std::filesystem::path(name).stem().string() + ".mp4");
  check_each_line_once(r.err, results);
  // A cut-off create reply made an instance all the same: it was found by label, not rented again.
  check_no_instance_left(sim_state(sim), 3);
  CHECK(r.err.find("made before for this step; not renting another") != std::string::npos);
}

TEST_CASE("faults: requests that hang are timed out and tried again: 3 inputs, 3 instances, 3 destroyed",
          "[e2e][vastai][faults]") {
  // Each kind of call hangs once past the request timeout (1 s here): the request is lost, as
  // when a connection stalls, and the simulator never handles it.
  const Json faults = {{"search", {"hang"}}, {"create", {"hang"}}, {"show", {"hang"}},
                       {"list", {"hang"}},   {"logs", {"hang"}},   {"destroy", {"hang"}}};
  SimServer sim(scenario({{"faults", faults}, {"hang_seconds", 2}}), "vast_sim.py");
  Batch batch(sim);
  CliResult r = run_flowrun(batch.args({"--set", "api_timeout=1s"}), batch.env);
  INFO(r.err);
  CHECK(r.exit_code == 0);
  Json results = batch.results();
  CHECK(results["succeeded"] == 3);
  check_each_line_once(r.err, results);
  check_no_instance_left(sim_state(sim), 3);
  CHECK(r.err.find("timed out") != std::string::npos);  // the hangs were seen, and named
  // A lost request is the API client's to try again, as a reset is: no step attempt ends in a
  // timeout for it (only the step's own deadline ends one that way).
  CHECK(r.err.find("failed (timeout)") == std::string::npos);
}

TEST_CASE("faults: SIGKILL at random moments, resumed each time, until the batch is done",
          "[e2e][vastai][faults][durable]") {
  const unsigned seed = static_cast<unsigned>(std::random_device{}());
  INFO("seed " << seed << " (the kill times come from it)");
  std::mt19937 random(seed);
  SimServer sim(scenario({{"line_interval", 0.15}, {"faults", {{"show", {503, "reset"}}, {"destroy", {"malformed"}}}}}),
                "vast_sim.py");
  Batch batch(sim);
  std::string run_id;
  int kills = 0;
  CliResult last;
  for (int round = 0; round < 8; ++round) {
    std::vector<std::string> args = run_id.empty() ? batch.args() : std::vector<std::string>{"resume", run_id};
    FlowrunProcess run(args, batch.env);
    const int wait_ms = std::uniform_int_distribution<int>(150, 1500)(random);
    bool finished = false;
    for (int waited = 0; waited < wait_ms; waited += 10) {
      if (::kill(run.pid(), 0) != 0) {
        finished = true;
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
    if (!finished && round < 5) {
      run.signal(SIGKILL);
      ++kills;
    }
    last = run.wait();
    std::smatch m;
    if (run_id.empty() && std::regex_search(last.err, m, std::regex("run (\\S+): video_batch"))) run_id = m[1];
    if (last.exit_code == 0) break;
    REQUIRE_FALSE(run_id.empty());
  }
  INFO(kills << " kills; last output:\n" << last.err);
  REQUIRE(last.exit_code == 0);
  Json results = batch.results();
  CHECK(results["succeeded"] == 3);
  check_no_instance_left(sim_state(sim), 3);  // however often it was killed, one instance per input
}
