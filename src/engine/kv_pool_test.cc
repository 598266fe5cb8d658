#include "engine/kv_pool.h"

#include <gtest/gtest.h>

namespace mlxs {
namespace {

constexpr int64_t kGiB = int64_t(1) << 30;

// An 8B-shaped model in bf16: 32 layers x 8 KV heads x 128 x (K, V) x 2 bytes x 16 tokens.
KvPoolInputs llama8b_on_device(int64_t free_bytes, double fraction) {
  KvPoolInputs in;
  in.bytes_per_block = int64_t(32) * 8 * 128 * 2 * 2 * 16;
  in.block_size = 16;
  in.max_model_len = 131072;
  in.max_num_seqs = 256;
  in.device = MemoryInfo{free_bytes, 141 * kGiB};
  in.memory_fraction = fraction;
  return in;
}

TEST(KvPool, DeviceGetsTheFractionOfFreeMemory) {
  auto in = llama8b_on_device(120 * kGiB, 0.9);
  auto p = size_kv_pool(in);
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(p->budget_bytes, int64_t(0.9 * double(120 * kGiB)));
  EXPECT_EQ(p->num_blocks, p->budget_bytes / in.bytes_per_block);
  // 108 GiB of 128 KiB tokens: 884,736 tokens, where the old fixed 1 GiB held 8,192.
  EXPECT_EQ(int64_t(p->num_blocks) * in.block_size, 884736);
  EXPECT_NE(p->basis.find("kv_cache.memory_fraction 0.9"), std::string::npos) << p->basis;
}

TEST(KvPool, NeverMoreThanTheRunningSequencesCanUse) {
  auto in = llama8b_on_device(120 * kGiB, 0.9);
  in.max_model_len = 1000;  // 63 blocks per sequence
  in.max_num_seqs = 4;
  auto p = size_kv_pool(in);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->num_blocks, 63 * 4);
}

TEST(KvPool, CpuTakesTheConfiguredBytes) {
  KvPoolInputs in;
  in.bytes_per_block = 1000;
  in.max_model_len = 64;  // 4 blocks
  in.max_num_seqs = 100;
  in.host = {8 * kGiB, 16 * kGiB};
  in.cpu_memory_bytes = 50500;
  auto p = size_kv_pool(in);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->num_blocks, 50);
  EXPECT_EQ(p->basis, "kv_cache.cpu_memory_bytes");
}

TEST(KvPool, CpuDefaultIsAQuarterOfRamAtMostHalfOfWhatIsAvailable) {
  KvPoolInputs in;
  in.bytes_per_block = 1 << 20;
  in.max_model_len = 16;
  in.max_num_seqs = 1 << 20;  // no bound from the sequences
  in.host = {12 * kGiB, 16 * kGiB};
  auto p = size_kv_pool(in);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->budget_bytes, 4 * kGiB);  // a quarter of 16 GiB < half of 12 GiB
  EXPECT_EQ(p->num_blocks, 4096);
  in.host.free_bytes = 2 * kGiB;  // a busy machine: half of what is available
  p = size_kv_pool(in);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->budget_bytes, kGiB);
}

TEST(KvPool, RefusesABudgetBelowOneFullLengthSequenceNamingTheKeys) {
  auto in = llama8b_on_device(20 * kGiB, 0.5);  // 10 GiB: 81,920 tokens < 131,072
  auto p = size_kv_pool(in);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), ErrorCode::kModelLoadError);
  const std::string& m = p.status().message();
  EXPECT_NE(m.find("81920 tokens"), std::string::npos) << m;
  EXPECT_NE(m.find("131072 tokens"), std::string::npos) << m;
  EXPECT_NE(m.find("raise kv_cache.memory_fraction"), std::string::npos) << m;
  EXPECT_NE(m.find("kv_cache.num_blocks (at least 8192)"), std::string::npos) << m;
  EXPECT_NE(m.find("context_length"), std::string::npos) << m;

  KvPoolInputs cpu;
  cpu.bytes_per_block = 1000;
  cpu.max_model_len = 64;
  cpu.cpu_memory_bytes = 3999;  // 3 of the 4 blocks one sequence needs
  p = size_kv_pool(cpu);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("raise kv_cache.cpu_memory_bytes"), std::string::npos)
      << p.status().message();
}

TEST(KvPool, HostMemoryIsReadOnLinux) {
  MemoryInfo m = host_memory();
  EXPECT_GT(m.total_bytes, 0);
  EXPECT_GT(m.free_bytes, 0);
  EXPECT_LE(m.free_bytes, m.total_bytes);
}

TEST(KvPool, FormatBytes) {
  EXPECT_EQ(format_bytes(3 * kGiB / 2), "1.5 GiB");
  EXPECT_EQ(format_bytes(512 << 20), "512.0 MiB");
  EXPECT_EQ(format_bytes(983040), "960.0 KiB");
  EXPECT_EQ(format_bytes(100), "100 B");
}

}  // namespace
}  // namespace mlxs
