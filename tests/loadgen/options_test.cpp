// muxload's command line as wrk users write it: time forms, -R, URL targets, -H, --verify,
// --seed; and the binary's help and exit status for what it refuses.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "options.hpp"
#include "server_process.hpp"
#include "subprocess.hpp"

namespace {

using namespace mux::load;

TEST(TimeForms, WrksFormsInTheOptionsUnit) {
    struct Case {
        const char* text;
        double bare_unit_s, out_unit_s, want;
    };
    for (Case c :
         {Case{"3", 1, 1, 3}, Case{"3s", 1, 1, 3}, Case{"500ms", 1, 1, 0.5}, Case{"2m", 1, 1, 120},
          Case{"1h", 1, 1, 3600}, Case{"250us", 1, 1, 250e-6}, Case{"1.5s", 1, 1, 1.5},
          Case{"2000", 1e-3, 1e-3, 2000}, Case{"1.5s", 1e-3, 1e-3, 1500}, Case{"0", 1, 1, 0}}) {
        double got = -1;
        std::string error;
        ASSERT_TRUE(parse_time(c.text, c.bare_unit_s, c.out_unit_s, &got, &error)) << c.text;
        EXPECT_DOUBLE_EQ(got, c.want) << c.text;
    }
    for (const char* bad : {"", "s", "3x", "3 s", "-1s", "ms3", "nan", "inf"}) {
        double got = 0;
        std::string error;
        EXPECT_FALSE(parse_time(bad, 1, 1, &got, &error)) << bad;
        EXPECT_NE(error.find("is not a time"), std::string::npos) << error;
    }
}

std::string parse(LoadOptions* o, std::vector<std::string> args) {
    CLI::App app;
    setup_load_options(app, o);
    std::vector<std::string> argv{"muxload"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<const char*> raw;
    for (auto& a : argv) raw.push_back(a.c_str());
    try {
        app.parse(int(raw.size()), const_cast<char**>(raw.data()));
    } catch (const CLI::ParseError& e) {
        return e.what();
    }
    return validate(o);
}

TEST(CommandLine, TakesWrksTimeFormsAndShortRate) {
    LoadOptions o;
    ASSERT_EQ(parse(&o, {"--target", "tcp:127.0.0.1:1", "-d", "3s", "--warmup", "500ms",
                         "--timeout", "1.5s", "--ramp-timeout", "1m", "-R", "2000"}),
              "");
    EXPECT_DOUBLE_EQ(o.duration_s, 3);
    EXPECT_DOUBLE_EQ(o.warmup_s, 0.5);
    EXPECT_DOUBLE_EQ(o.timeout_ms, 1500);
    EXPECT_DOUBLE_EQ(o.ramp_timeout_s, 60);
    EXPECT_DOUBLE_EQ(o.rate_per_s, 2000);
    LoadOptions bare;
    ASSERT_EQ(parse(&bare, {"--target", "tcp:127.0.0.1:1", "--duration", "3", "--timeout", "250"}),
              "");
    EXPECT_DOUBLE_EQ(bare.duration_s, 3);
    EXPECT_DOUBLE_EQ(bare.timeout_ms, 250);
    LoadOptions wrong;
    EXPECT_NE(parse(&wrong, {"--target", "tcp:127.0.0.1:1", "--duration", "3x"}).find("not a time"),
              std::string::npos);
}

TEST(CommandLine, AUrlTargetIsHttpWithItsPathAndHost) {
    LoadOptions o;
    ASSERT_EQ(parse(&o, {"--target", "http://127.0.0.1:8080/static/a.txt", "-H", "X-Test: 1"}), "");
    EXPECT_EQ(o.proto, Proto::Http);
    EXPECT_EQ(o.target.to_string(), "tcp:127.0.0.1:8080");
    EXPECT_EQ(o.path, "/static/a.txt");
    EXPECT_EQ(o.host_header, "127.0.0.1:8080");
    EXPECT_EQ(o.headers, std::vector<std::string>{"X-Test: 1"});
    // Not one of muxserver's paths: framing only, and it says so.
    EXPECT_EQ(o.verify, Verify::Framing);
    EXPECT_NE(o.verify_note.find("/static/a.txt is not one of muxserver's paths"),
              std::string::npos);
    auto config = to_json(o);
    EXPECT_EQ(config["path"], "/static/a.txt");
    EXPECT_EQ(config["request"], "GET /static/a.txt");
    EXPECT_EQ(config["verify"], "framing");
}

TEST(CommandLine, MuxserversPathsAreVerifiedInFull) {
    LoadOptions root;
    ASSERT_EQ(parse(&root, {"--target", "http://localhost"}), "");
    EXPECT_EQ(root.target.to_string(), "tcp:127.0.0.1:80");
    EXPECT_EQ(root.path, "/");
    EXPECT_EQ(root.verify, Verify::Full);
    EXPECT_EQ(root.verify_note, "");
    LoadOptions bytes;
    ASSERT_EQ(parse(&bytes, {"--target", "http://[::1]:9000/bytes/100"}), "");
    EXPECT_EQ(bytes.target.to_string(), "tcp:[::1]:9000");
    EXPECT_EQ(bytes.reply_bytes, 100);
    EXPECT_EQ(bytes.verify, Verify::Full);
    LoadOptions reply;
    ASSERT_EQ(parse(&reply, {"--target", "tcp:127.0.0.1:1", "--proto", "http", "--reply", "20"}),
              "");
    EXPECT_EQ(reply.path, "/bytes/20");
    LoadOptions framing;
    ASSERT_EQ(parse(&framing, {"--target", "http://127.0.0.1:1/", "--verify", "framing"}), "");
    EXPECT_EQ(framing.verify, Verify::Framing);
}

TEST(CommandLine, RefusesWhatCannotWork) {
    auto error_of = [](std::vector<std::string> args) {
        LoadOptions o;
        return parse(&o, std::move(args));
    };
    EXPECT_NE(error_of({"--target", "https://127.0.0.1/"}).find("not TLS"), std::string::npos);
    EXPECT_NE(error_of({"--target", "http://127.0.0.1/x", "--proto", "mux1"}).find("mux1"),
              std::string::npos);
    EXPECT_NE(error_of({"--target", "http://127.0.0.1/x", "--verify", "full"})
                  .find("cannot know what /x returns"),
              std::string::npos);
    EXPECT_NE(error_of({"--target", "http://127.0.0.1/x", "--reply", "10"}).find("names the path"),
              std::string::npos);
    EXPECT_NE(error_of({"--target", "tcp:127.0.0.1:1", "--verify", "framing"}).find("--proto http"),
              std::string::npos);
    EXPECT_NE(error_of({"--target", "tcp:127.0.0.1:1", "-H", "X: 1"}).find("--proto http"),
              std::string::npos);
    EXPECT_NE(error_of({"--target", "http://127.0.0.1/", "-H", "NoColon"}).find("Name: value"),
              std::string::npos);
    EXPECT_NE(error_of({"--target", "tcp:127.0.0.1:1", "--proto", "gopher"}), "");
}

TEST(CommandLine, AHostHeaderReplacesMuxloads) {
    LoadOptions o;
    ASSERT_EQ(parse(&o, {"--target", "http://127.0.0.1:1/", "-H", "host: example"}), "");
    EXPECT_EQ(o.host_header, "");
}

TEST(CommandLine, SeedsAreDrawnUnlessGiven) {
    LoadOptions a, b, given;
    ASSERT_EQ(parse(&a, {"--target", "tcp:127.0.0.1:1"}), "");
    ASSERT_EQ(parse(&b, {"--target", "tcp:127.0.0.1:1"}), "");
    ASSERT_EQ(parse(&given, {"--target", "tcp:127.0.0.1:1", "--seed", "42"}), "");
    EXPECT_NE(a.seed, 0u);
    EXPECT_NE(a.seed, b.seed);
    EXPECT_EQ(given.seed, 42u);
    EXPECT_EQ(to_json(given)["seed"], 42u);
}

struct Ran {
    int status;
    std::string out;
};
Ran run_muxload(std::vector<std::string> args) {
    args.insert(args.begin(), mux::test::binary_path("muxload"));
    mux::SpawnOptions options;
    options.quiet_stderr = true;
    mux::Subprocess p(args, options);
    std::string out = p.read_rest(std::chrono::seconds(20));
    auto status = p.wait(std::chrono::seconds(20));
    return {status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1, out};
}

TEST(Binary, HelpShowsChoicesAndEveryExitStatus) {
    Ran help = run_muxload({"--help"});
    EXPECT_EQ(help.status, 0);
    for (const char* text :
         {"--proto mux1|http", "--arrival uniform|poisson", "-R,--rate", "--verify full|framing",
          "Exit status: 0", "1 nothing measured", "2 refused", "3 measured",
          "4 measured, but not clean", "5 most replies failed"})
        EXPECT_NE(help.out.find(text), std::string::npos) << text;
    EXPECT_EQ(help.out.find("->"), std::string::npos) << "a CLI11 map leaked into --help";
}

TEST(Binary, ABadCommandLineExitsTwo) {
    EXPECT_EQ(run_muxload({"--target", "tcp:127.0.0.1:1", "--duration", "3x"}).status, 2);
    EXPECT_EQ(run_muxload({"--no-such-option"}).status, 2);
    EXPECT_EQ(run_muxload({"--target", "https://127.0.0.1/"}).status, 2);
}

}  // namespace
