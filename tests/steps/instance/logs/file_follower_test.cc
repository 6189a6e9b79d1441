// FileFollower with a marker's prefilter, as wait-for-marker reads a file with only a marker:
// runs of lines without the marker are skipped whole, so a marker cut by a chunk's end, at the
// file's start or end, or on a line longer than a chunk must still be found.
#include "steps/instance/logs/file_follower.h"

#include <catch2/catch.hpp>
#include <fstream>

#include "engine/io/literal_finder.h"
#include "support/sim_server.h"

using namespace flowrun;
using flowrun::test::TempDir;

namespace {

const std::string kMarker = "VASTAI_PIPELINE_COMPLETED_SUCCESSFULLY";

// Follows a file as the marker step does: lines with the marker are recorded, the rest skipped.
struct MarkerReader {
  FileFollower follower;
  LiteralFinder finder{kMarker};
  std::vector<std::string> found;
  std::string last;

  void poll(const std::string& path) {
    follower.follow(
        path,
        [&](std::string_view line) {
          last.assign(line);
          if (finder.occurs_in(line)) found.emplace_back(line);
          return true;
        },
        [] { return true; }, [&](std::string_view run) { return finder.occurs_in(run); });
  }
};

std::string filler(size_t bytes) {
  std::string s;
  while (s.size() < bytes) s += "frame 00001234/99999 at 31.4 fps VASTAI_PIPELINE_COMPLETED SUCCESSFULLY\n";
  s.resize(bytes - 1);
  return s + "\n";
}

}  // namespace

TEST_CASE("file follower: a marker at every place around a chunk's end is found once", "[steps][logs]") {
  TempDir dir;
  const std::string path = dir.file("job.log");
  // The follower reads 128 KiB at a time: the marker's line across that boundary and near it.
  const size_t chunk = 128 << 10;
  for (size_t before : {chunk - kMarker.size() - 1, chunk - 20, chunk - 1, chunk, chunk + 1, 2 * chunk - 5}) {
    const std::string line = "at " + std::to_string(before) + " " + kMarker + " done";
    dir.write("job.log", filler(before) + line + "\n" + filler(3000));
    MarkerReader reader;
    reader.poll(path);
    INFO("marker line at " << before);
    CHECK(reader.found == std::vector<std::string>{line});
    const std::string tail = filler(3000);
    CHECK(reader.last == tail.substr(tail.rfind('\n', tail.size() - 2) + 1,
                                     tail.size() - 1 - (tail.rfind('\n', tail.size() - 2) + 1)));
  }
}

TEST_CASE("file follower: a marker at offset 0, at the very end, and on a line longer than a chunk", "[steps][logs]") {
  TempDir dir;
  const std::string path = dir.file("job.log");
  {
    dir.write("job.log", kMarker + "\n" + filler(300000));
    MarkerReader reader;
    reader.poll(path);
    CHECK(reader.found == std::vector<std::string>{kMarker});
  }
  {
    dir.write("job.log", filler(300000) + kMarker);  // no line end yet: it waits for one
    MarkerReader reader;
    reader.poll(path);
    CHECK(reader.found.empty());
    std::ofstream(path, std::ios::app) << "\n";
    reader.poll(path);
    CHECK(reader.found == std::vector<std::string>{kMarker});
  }
  {
    const std::string huge = std::string(600000, 'x') + kMarker + std::string(400000, 'y');
    dir.write("job.log", filler(1000) + huge + "\n" + filler(1000));
    MarkerReader reader;
    reader.poll(path);
    REQUIRE(reader.found.size() == 1);
    CHECK(reader.found[0] == huge);
  }
}

TEST_CASE("file follower: a marker written across two polls, and after a truncation", "[steps][logs]") {
  TempDir dir;
  const std::string path = dir.file("job.log");
  dir.write("job.log", filler(200000) + "x VASTAI_PIPELINE_COMP");
  MarkerReader reader;
  reader.poll(path);
  CHECK(reader.found.empty());
  std::ofstream(path, std::ios::app) << "LETED_SUCCESSFULLY y\n" << filler(150000);
  reader.poll(path);
  CHECK(reader.found == std::vector<std::string>{"x " + kMarker + " y"});

  dir.write("job.log", filler(5000) + "again " + kMarker + "\n");  // truncated: read from the start
  reader.poll(path);
  CHECK(reader.found == std::vector<std::string>{"x " + kMarker + " y", "again " + kMarker});
  CHECK(reader.follower.offset() == 5000 + 7 + kMarker.size());
}
