// tests/main.cpp: GoogleTest entry point. Runs every suite from the repository root (fixtures
// are read as tests/fixtures/..., real data as ../shared/data/...) and ends with one plain line
// "N passed, N failed, N skipped" that CI reads.
#include <gtest/gtest.h>

#include <cstdio>

int main(int argc, char** argv) {
    testing::InitGoogleTest(&argc, argv);
    const int rc = RUN_ALL_TESTS();
    const testing::UnitTest& u = *testing::UnitTest::GetInstance();
    std::printf("%d passed, %d failed, %d skipped\n", u.successful_test_count(),
                u.failed_test_count(), u.skipped_test_count());
    return rc;
}
