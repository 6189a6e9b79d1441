#include "engine/metrics/step_type_of.h"

#include <catch2/catch.hpp>

#include "engine/model/workflow.h"

using namespace flowrun;

namespace {

Step action(const std::string& id, const std::string& type) {
  Step s;
  s.id = id;
  s.kind = Step::Kind::kAction;
  s.type = type;
  return s;
}

// provision, videos (for_each: wait, supervise with on_stall: restart; finally: destroy),
// grp (group: inner; finally: tidy); the workflow's finally: notify.
Workflow sample_workflow() {
  Workflow w;
  w.steps.push_back(action("provision", "provision"));
  Step videos;
  videos.id = "videos";
  videos.kind = Step::Kind::kForEach;
  videos.steps.push_back(action("wait", "wait-for-marker"));
  Step supervise = action("supervise", "stall-check");
  supervise.nested["on_stall"].push_back(action("restart", "restart-container"));
  videos.steps.push_back(supervise);
  videos.finally.push_back(action("destroy", "destroy"));
  w.steps.push_back(videos);
  Step grp;
  grp.id = "grp";
  grp.kind = Step::Kind::kGroup;
  grp.steps.push_back(action("inner", "http"));
  grp.finally.push_back(action("tidy", "exec"));
  w.steps.push_back(grp);
  w.finally.push_back(action("notify", "log"));
  return w;
}

}  // namespace

TEST_CASE("step_type_label: a path maps to its step's type through items, finally and nested lists",
          "[metrics][step_type]") {
  const Workflow w = sample_workflow();
  CHECK(step_type_label(w, "provision") == "provision");
  CHECK(step_type_label(w, "videos") == "for_each");
  CHECK(step_type_label(w, "videos[2].wait") == "wait-for-marker");
  CHECK(step_type_label(w, "videos[12].supervise") == "stall-check");
  CHECK(step_type_label(w, "videos[0].supervise.on_stall#2.restart") == "restart-container");
  CHECK(step_type_label(w, "videos[3].finally.destroy") == "destroy");
  CHECK(step_type_label(w, "grp") == "group");
  CHECK(step_type_label(w, "grp.inner") == "http");
  CHECK(step_type_label(w, "grp.finally.tidy") == "exec");
  CHECK(step_type_label(w, "finally.notify") == "log");
}

TEST_CASE("step_type_label: a path naming no step is unknown, never the path itself", "[metrics][step_type]") {
  const Workflow w = sample_workflow();
  for (const char* path : {"", "nope", "videos[2].nope", "videos[2].wait.more", "finally", "videos.finally",
                           "provision.on_stall#1.restart", "videos[1]..wait", "grp.finally.inner", "notify"})
    CHECK(step_type_label(w, path) == "unknown");
  CHECK(step_at_path(w, "videos[2].wait") == &w.steps[1].steps[0]);
  CHECK(step_at_path(w, "videos[2]") == &w.steps[1]);
}

TEST_CASE("step_at_path: the index finds the same step as the search of each list, or none", "[metrics][step_type]") {
  const Workflow w = sample_workflow();
  const StepIndex index(w);
  for (const char* path : {"provision",
                           "videos",
                           "videos[2].wait",
                           "videos[12].supervise",
                           "videos[0].supervise.on_stall#2.restart",
                           "videos[3].finally.destroy",
                           "grp",
                           "grp.inner",
                           "grp.finally.tidy",
                           "finally.notify",
                           "",
                           "nope",
                           "videos[2].nope",
                           "videos[2].wait.more",
                           "finally",
                           "videos.finally",
                           "provision.on_stall#1.restart",
                           "videos[1]..wait",
                           "grp.finally.inner",
                           "notify"}) {
    INFO(path);
    CHECK(step_at_path(w, path, &index) == step_at_path(w, path));
    CHECK(step_type_label(w, path, &index) == step_type_label(w, path));
  }
  CHECK(step_at_path(w, "videos[0].supervise.on_stall#2.restart", &index) != nullptr);
}
