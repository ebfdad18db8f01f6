// Single-process behaviour of SharedMemory: the QSharedMemory contract, error codes and backends.
#include "shmring/core/shared_memory.h"

#include <fcntl.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "test_support.h"

namespace shmring {
namespace {

using testing::unique_key;

bool dev_shm_has(const std::string& native_key) {
  return access(("/dev/shm/" + native_key).c_str(), F_OK) == 0;
}

bool semaphore_exists(int id) { return id >= 0 && semctl(id, 0, GETVAL) >= 0; }

TEST(SharedMemoryTest, DefaultObjectIsDetachedWithNoKey) {
  SharedMemory shm;
  EXPECT_FALSE(shm.is_attached());
  EXPECT_EQ(shm.data(), nullptr);
  EXPECT_EQ(shm.const_data(), nullptr);
  EXPECT_EQ(shm.size(), 0u);
  EXPECT_EQ(shm.key(), "");
  EXPECT_EQ(shm.native_key(), "");
  EXPECT_EQ(shm.error(), SharedMemoryError::kNoError);
}

TEST(SharedMemoryTest, EmptyKeyIsKeyError) {
  SharedMemory shm;
  EXPECT_FALSE(shm.create(100));
  EXPECT_EQ(shm.error(), SharedMemoryError::kKeyError);
  EXPECT_FALSE(shm.error_string().empty());
  EXPECT_FALSE(shm.attach());
  EXPECT_EQ(shm.error(), SharedMemoryError::kKeyError);
  EXPECT_EQ(shm.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SharedMemoryTest, BadNativeKeysAreKeyErrors) {
  SharedMemory shm;
  shm.set_native_key("a/b");
  EXPECT_FALSE(shm.create(10));
  EXPECT_EQ(shm.error(), SharedMemoryError::kKeyError);
  shm.set_native_key(std::string(300, 'x'));
  EXPECT_FALSE(shm.create(10));
  EXPECT_EQ(shm.error(), SharedMemoryError::kKeyError);
  shm.set_native_key("..");
  EXPECT_FALSE(shm.attach());
  EXPECT_EQ(shm.error(), SharedMemoryError::kKeyError);
}

TEST(SharedMemoryTest, NativeKeyIsDeterministicReadableAndDistinct) {
  EXPECT_EQ(SharedMemory::native_key_for("market/data"), SharedMemory::native_key_for("market/data"));
  // Pinned: the mapping must not change between builds, or processes built apart cannot meet.
  // Independently computed (FNV-1a 64 + murmur3 fmix64 of "hello").
  EXPECT_EQ(SharedMemory::native_key_for("hello"), "shmring_hello_e9c562c0fdb23244");
  const std::string noel = SharedMemory::native_key_for("No\xC3\xABl");
  const std::string nol = SharedMemory::native_key_for("Nol");
  EXPECT_NE(noel, nol);
  EXPECT_EQ(noel.rfind("shmring_No__l_", 0), 0u) << noel;
  EXPECT_EQ(nol.rfind("shmring_Nol_", 0), 0u) << nol;
  // Long keys stay under NAME_MAX and still differ at the end.
  const std::string a = SharedMemory::native_key_for(std::string(1000, 'k') + "a");
  const std::string b = SharedMemory::native_key_for(std::string(1000, 'k') + "b");
  EXPECT_NE(a, b);
  EXPECT_LT(a.size(), 100u);
}

TEST(SharedMemoryTest, CreateAttachesZeroFilledMemory) {
  SharedMemory shm(unique_key("create"));
  ASSERT_TRUE(shm.create(10000)) << shm.error_string();
  EXPECT_TRUE(shm.is_attached());
  EXPECT_EQ(shm.size(), 10000u);
  EXPECT_EQ(shm.error(), SharedMemoryError::kNoError);
  EXPECT_TRUE(shm.error_string().empty());
  EXPECT_TRUE(shm.status().ok());
  ASSERT_NE(shm.data(), nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(shm.data()) % 4096, 0u);
  const auto* bytes = static_cast<const unsigned char*>(shm.const_data());
  for (std::size_t i = 0; i < shm.size(); ++i) ASSERT_EQ(bytes[i], 0) << i;
  EXPECT_TRUE(dev_shm_has(shm.native_key()));
  EXPECT_TRUE(shm.detach());
  EXPECT_FALSE(shm.is_attached());
  EXPECT_EQ(shm.data(), nullptr);
  EXPECT_EQ(shm.size(), 0u);
}

TEST(SharedMemoryTest, AttachSeesTheCreatorsBytesAndSize) {
  const std::string key = unique_key("attach");
  SharedMemory creator(key);
  ASSERT_TRUE(creator.create(4096 * 3 + 5));
  std::strcpy(static_cast<char*>(creator.data()), "hello from the creator");
  SharedMemory other(key);
  ASSERT_TRUE(other.attach()) << other.error_string();
  EXPECT_EQ(other.size(), 4096u * 3 + 5);
  EXPECT_STREQ(static_cast<const char*>(other.const_data()), "hello from the creator");
  EXPECT_EQ(creator.num_attachments(), 2);
  EXPECT_EQ(other.num_attachments(), 2);
}

TEST(SharedMemoryTest, SecondCreateIsAlreadyExistsAndLeavesSegmentIntact) {
  const std::string key = unique_key("twice");
  SharedMemory first(key);
  ASSERT_TRUE(first.create(64));
  static_cast<char*>(first.data())[0] = 'x';
  SharedMemory second(key);
  EXPECT_FALSE(second.create(128));
  EXPECT_EQ(second.error(), SharedMemoryError::kAlreadyExists);
  EXPECT_NE(second.error_string().find(key), std::string::npos) << second.error_string();
  EXPECT_NE(second.error_string().find("create"), std::string::npos);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
  // Untouched: data, size and the lock still work.
  EXPECT_EQ(static_cast<char*>(first.data())[0], 'x');
  ASSERT_TRUE(second.attach());
  EXPECT_EQ(second.size(), 64u);
  EXPECT_TRUE(first.lock());
  EXPECT_FALSE(second.try_lock_for(10));
  EXPECT_TRUE(first.unlock());
  EXPECT_TRUE(second.lock());
  EXPECT_TRUE(second.unlock());
}

TEST(SharedMemoryTest, AttachWithoutSegmentIsNotFound) {
  SharedMemory shm(unique_key("missing"));
  EXPECT_FALSE(shm.attach());
  EXPECT_EQ(shm.error(), SharedMemoryError::kNotFound);
  EXPECT_NE(shm.error_string().find("attach"), std::string::npos);
  EXPECT_NE(shm.error_string().find("No such file"), std::string::npos) << shm.error_string();
  EXPECT_EQ(shm.status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(shm.exists());
  EXPECT_EQ(shm.num_attachments(), -1);
}

TEST(SharedMemoryTest, SuccessResetsTheError) {
  const std::string key = unique_key("reset");
  SharedMemory shm(key);
  EXPECT_FALSE(shm.attach());
  EXPECT_EQ(shm.error(), SharedMemoryError::kNotFound);
  ASSERT_TRUE(shm.create(10));
  EXPECT_EQ(shm.error(), SharedMemoryError::kNoError);
  EXPECT_EQ(shm.error_string(), "");
}

TEST(SharedMemoryTest, InvalidSizes) {
  SharedMemory shm(unique_key("size"));
  EXPECT_FALSE(shm.create(0));
  EXPECT_EQ(shm.error(), SharedMemoryError::kInvalidSize);
  EXPECT_FALSE(shm.create(SIZE_MAX));
  EXPECT_EQ(shm.error(), SharedMemoryError::kInvalidSize);
  EXPECT_FALSE(shm.create(SIZE_MAX - 4096));
  EXPECT_EQ(shm.error(), SharedMemoryError::kInvalidSize);
  EXPECT_TRUE(testing::dev_shm_entries(SharedMemory::native_key_for(shm.key())).empty());
}

TEST(SharedMemoryTest, SizeTheSystemCannotProvideIsOutOfResourcesAndLeavesNothing) {
  SharedMemory shm(unique_key("huge"));
  EXPECT_FALSE(shm.create(std::size_t{1} << 40));  // 1 TiB
  EXPECT_EQ(shm.error(), SharedMemoryError::kOutOfResources) << shm.error_string();
  EXPECT_EQ(shm.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(dev_shm_has(shm.native_key()));
  EXPECT_FALSE(shm.is_attached());
}

TEST(SharedMemoryTest, CreateWhileAttachedFails) {
  SharedMemory shm(unique_key("attached"));
  ASSERT_TRUE(shm.create(10));
  EXPECT_FALSE(shm.create(10));
  EXPECT_EQ(shm.error(), SharedMemoryError::kAlreadyExists);
  EXPECT_FALSE(shm.attach());
  EXPECT_EQ(shm.error(), SharedMemoryError::kAlreadyExists);
  EXPECT_TRUE(shm.is_attached());
}

TEST(SharedMemoryTest, DetachWhenNotAttachedFails) {
  SharedMemory shm(unique_key("detach"));
  EXPECT_FALSE(shm.detach());
  EXPECT_EQ(shm.error(), SharedMemoryError::kNotFound);
}

TEST(SharedMemoryTest, LastDetachRemovesSegmentAndLock) {
  const std::string key = unique_key("last");
  SharedMemory a(key), b(key);
  ASSERT_TRUE(a.create(100));
  ASSERT_TRUE(b.attach());
  const std::string native = a.native_key();
  ASSERT_TRUE(a.lock());
  ASSERT_TRUE(a.unlock());
  EXPECT_TRUE(a.detach());
  EXPECT_TRUE(dev_shm_has(native));  // b is still attached
  EXPECT_EQ(b.num_attachments(), 1);
  EXPECT_TRUE(b.detach());
  EXPECT_FALSE(dev_shm_has(native));
  SharedMemory c(key);
  EXPECT_FALSE(c.attach());
  EXPECT_EQ(c.error(), SharedMemoryError::kNotFound);
}

TEST(SharedMemoryTest, DestructorDetaches) {
  const std::string key = unique_key("dtor");
  std::string native;
  {
    SharedMemory shm(key);
    ASSERT_TRUE(shm.create(100));
    native = shm.native_key();
    EXPECT_TRUE(dev_shm_has(native));
  }
  EXPECT_FALSE(dev_shm_has(native));
}

TEST(SharedMemoryTest, SetKeyAndSetNativeKeyDetachFirst) {
  const std::string key = unique_key("rekey");
  SharedMemory keeper(key);
  ASSERT_TRUE(keeper.create(10));
  SharedMemory shm(key);
  ASSERT_TRUE(shm.attach());
  shm.set_key(key);  // the same key: nothing happens (as in Qt)
  EXPECT_TRUE(shm.is_attached());
  shm.set_key(unique_key("other"));
  EXPECT_FALSE(shm.is_attached());
  ASSERT_TRUE(shm.create(10));
  shm.set_native_key("some_native_name");
  EXPECT_FALSE(shm.is_attached());
  EXPECT_EQ(shm.key(), "");
  EXPECT_EQ(shm.native_key(), "some_native_name");
  EXPECT_EQ(keeper.num_attachments(), 1);
}

TEST(SharedMemoryTest, NativeKeyAloneWorks) {
  const std::string native = "shmring_native_" + unique_key("n");
  SharedMemory a, b;
  a.set_native_key(native);
  b.set_native_key(native);
  ASSERT_TRUE(a.create(32));
  EXPECT_TRUE(dev_shm_has(native));
  ASSERT_TRUE(b.attach());
  EXPECT_EQ(b.size(), 32u);
  EXPECT_EQ(a.key(), "");
}

TEST(SharedMemoryTest, LockAndUnlockSemantics) {
  const std::string key = unique_key("lock");
  SharedMemory detached(key);
  EXPECT_FALSE(detached.lock());
  EXPECT_EQ(detached.error(), SharedMemoryError::kLockError);
  SharedMemory shm(key);
  ASSERT_TRUE(shm.create(16));
  EXPECT_FALSE(shm.unlock());  // not held
  EXPECT_EQ(shm.error(), SharedMemoryError::kLockError);
  EXPECT_EQ(shm.status().code(), absl::StatusCode::kAborted);
  ASSERT_TRUE(shm.lock());
  EXPECT_TRUE(shm.holds_lock());
  EXPECT_FALSE(shm.previous_owner_died());
  EXPECT_FALSE(shm.lock());  // already held by this object
  EXPECT_EQ(shm.error(), SharedMemoryError::kLockError);
  SharedMemory other(key);
  ASSERT_TRUE(other.attach());
  EXPECT_FALSE(other.try_lock_for(20));
  EXPECT_EQ(other.error(), SharedMemoryError::kLockError);
  EXPECT_NE(other.error_string().find("timed out"), std::string::npos);
  ASSERT_TRUE(shm.unlock());
  EXPECT_FALSE(shm.holds_lock());
  EXPECT_TRUE(other.try_lock_for(1000));
  EXPECT_TRUE(other.unlock());
}

TEST(SharedMemoryTest, DetachReleasesAHeldLock) {
  const std::string key = unique_key("detachlock");
  SharedMemory a(key), b(key);
  ASSERT_TRUE(a.create(16));
  ASSERT_TRUE(b.attach());
  ASSERT_TRUE(b.lock());
  ASSERT_TRUE(b.detach());
  EXPECT_TRUE(a.try_lock_for(1000));
}

TEST(SharedMemoryTest, ExistsTracksLiveSegments) {
  const std::string key = unique_key("exists");
  SharedMemory probe(key);
  EXPECT_FALSE(probe.exists());
  SharedMemory shm(key);
  ASSERT_TRUE(shm.create(10));
  EXPECT_TRUE(probe.exists());
  EXPECT_TRUE(shm.exists());
  EXPECT_EQ(probe.num_attachments(), 1);
  shm.detach();
  EXPECT_FALSE(probe.exists());
}

TEST(SharedMemoryTest, CreateOrAttachCreatesThenAttaches) {
  const std::string key = unique_key("coa");
  SharedMemory a(key), b(key);
  ASSERT_TRUE(a.create_or_attach(200));
  static_cast<char*>(a.data())[7] = 42;
  ASSERT_TRUE(b.create_or_attach(999));
  EXPECT_EQ(b.size(), 200u);  // the existing segment keeps its size
  EXPECT_EQ(static_cast<char*>(b.data())[7], 42);
  EXPECT_EQ(a.num_attachments(), 2);
}

TEST(SharedMemoryTest, DestroyNoWaitRemovesNameAndLockOthersKeepMapping) {
  const std::string key = unique_key("destroy");
  SharedMemory a(key), b(key);
  ASSERT_TRUE(a.create(64));
  ASSERT_TRUE(b.attach());
  static_cast<char*>(b.data())[0] = 'k';
  const std::string native = a.native_key();
  ASSERT_TRUE(a.destroy(DestroyMode::kNoWait)) << a.error_string();
  EXPECT_FALSE(a.is_attached());
  EXPECT_FALSE(dev_shm_has(native));
  EXPECT_EQ(static_cast<char*>(b.data())[0], 'k');  // still mapped
  EXPECT_FALSE(b.lock());  // the lock went with the segment
  EXPECT_EQ(b.error(), SharedMemoryError::kLockError);
  SharedMemory c(key);
  EXPECT_FALSE(c.attach());
  EXPECT_EQ(c.error(), SharedMemoryError::kNotFound);
  // The key is free for a new segment at once.
  EXPECT_TRUE(c.create(8));
}

TEST(SharedMemoryTest, DestroyForceNoWaitDoesNotWaitForTheLock) {
  const std::string key = unique_key("force");
  SharedMemory a(key), b(key);
  ASSERT_TRUE(a.create(64));
  ASSERT_TRUE(b.attach());
  ASSERT_TRUE(b.lock());  // held elsewhere
  ASSERT_TRUE(a.destroy(DestroyMode::kForceNoWait));
  EXPECT_FALSE(a.exists());
  SharedMemory c(key);
  EXPECT_FALSE(c.attach());
  EXPECT_EQ(c.error(), SharedMemoryError::kNotFound);
}

TEST(SharedMemoryTest, DestroyNoWaitWaitsForTheLock) {
  const std::string key = unique_key("nowaitlock");
  SharedMemory a(key), b(key);
  ASSERT_TRUE(a.create(64));
  ASSERT_TRUE(b.attach());
  ASSERT_TRUE(b.lock());
  // kNoWait takes the lock: with it held elsewhere, a timed attempt shows it would block.
  EXPECT_FALSE(a.try_lock_for(20));
  ASSERT_TRUE(b.unlock());
  EXPECT_TRUE(a.destroy(DestroyMode::kNoWait));
}

TEST(SharedMemoryTest, DestroyWaitRemovesNameNowAndMemoryAtLastDetach) {
  const std::string key = unique_key("wait");
  SharedMemory a(key), b(key);
  ASSERT_TRUE(a.create(64));
  ASSERT_TRUE(b.attach());
  const std::string native = a.native_key();
  ASSERT_TRUE(a.destroy(DestroyMode::kWait));
  EXPECT_FALSE(dev_shm_has(native));
  SharedMemory c(key);
  EXPECT_FALSE(c.attach());
  EXPECT_EQ(c.error(), SharedMemoryError::kNotFound);
  // b keeps working, lock included, until it detaches.
  static_cast<char*>(b.data())[3] = 1;
  EXPECT_TRUE(b.lock());
  EXPECT_TRUE(b.unlock());
  EXPECT_EQ(b.num_attachments(), 1);
  EXPECT_TRUE(b.detach());
}

TEST(SharedMemoryTest, DestroyByKeyWhenDetached) {
  const std::string key = unique_key("bykey");
  {
    SharedMemory a(key);
    ASSERT_TRUE(a.create(64));
    SharedMemory remover(key);
    EXPECT_TRUE(remover.destroy(DestroyMode::kForceNoWait));
    EXPECT_FALSE(remover.exists());
  }
  SharedMemory missing(key);
  EXPECT_FALSE(missing.destroy());
  EXPECT_EQ(missing.error(), SharedMemoryError::kNotFound);
}

TEST(SharedMemoryTest, PermissionsAreAppliedExactlyRegardlessOfUmask) {
  const mode_t old_mask = umask(0077);
  SharedMemory shm(unique_key("perm"));
  shm.set_permissions(0664);
  ASSERT_TRUE(shm.create(10));
  umask(old_mask);
  struct stat st {};
  ASSERT_EQ(stat(("/dev/shm/" + shm.native_key()).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0664u);
}

TEST(SharedMemoryTest, DefaultPermissionsAreOwnerOnly) {
  SharedMemory shm(unique_key("perm0"));
  ASSERT_TRUE(shm.create(10));
  struct stat st {};
  ASSERT_EQ(stat(("/dev/shm/" + shm.native_key()).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(SharedMemoryTest, PermissionDeniedForAnotherUser) {
  const std::string key = unique_key("denied");
  SharedMemory shm(key);
  ASSERT_TRUE(shm.create(10));  // 0600, owned by root
  const auto result = testing::run_as_nobody([&] {
    SharedMemory other(key);
    if (other.attach(AccessMode::kReadOnly)) return 1;
    if (other.error() != SharedMemoryError::kPermissionDenied) return 2;
    if (other.status().code() != absl::StatusCode::kPermissionDenied) return 3;
    if (other.error_string().find("Permission denied") == std::string::npos) return 4;
    SharedMemory creator(key);
    if (creator.create(10)) return 5;  // must not steal or disturb the live segment
    return 0;
  });
  EXPECT_TRUE(result.ok()) << result.code;
  EXPECT_TRUE(shm.exists());
}

TEST(SharedMemoryTest, GroupReadablePermissionsAllowReadOnlyAttachByOthers) {
  const std::string key = unique_key("shared");
  SharedMemory shm(key);
  shm.set_permissions(0644);
  ASSERT_TRUE(shm.create(10));
  static_cast<char*>(shm.data())[0] = 'r';
  const auto result = testing::run_as_nobody([&] {
    SharedMemory other(key);
    if (!other.attach(AccessMode::kReadOnly)) return 1;
    if (static_cast<const char*>(other.const_data())[0] != 'r') return 2;
    SharedMemory writer(key);
    if (writer.attach(AccessMode::kReadWrite)) return 3;
    return writer.error() == SharedMemoryError::kPermissionDenied ? 0 : 4;
  });
  EXPECT_TRUE(result.ok()) << result.code;
}

TEST(SharedMemoryTest, GroupAtCreateLetsThatGroupIn) {
  const std::string key = unique_key("group");
  SharedMemory shm(key);
  shm.set_permissions(0660);
  shm.set_group(65534);  // nogroup
  ASSERT_TRUE(shm.create(64)) << shm.error_string();
  struct stat st {};
  ASSERT_EQ(stat(("/dev/shm/" + shm.native_key()).c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 65534u);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  static_cast<char*>(shm.data())[0] = 'g';
  // A process of that group (but another user) can attach read-write and take the lock.
  const auto result = testing::run_as_nobody([&] {
    SharedMemory member(key);
    if (!member.attach(AccessMode::kReadWrite)) return 1;
    if (static_cast<const char*>(member.const_data())[0] != 'g') return 2;
    if (!member.lock() || !member.unlock()) return 3;
    return 0;
  });
  EXPECT_TRUE(result.ok()) << result.code;
}

TEST(SharedMemoryTest, ForeignFileUnderTheNameIsNotReclaimed) {
  SharedMemory shm(unique_key("foreign"));
  const std::string path = "/dev/shm/" + shm.native_key();
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "not a segment, just a user's file of some length", 48), 48);
  ASSERT_EQ(ftruncate(fd, 8192), 0);
  close(fd);
  EXPECT_FALSE(shm.create(10));
  EXPECT_EQ(shm.error(), SharedMemoryError::kAlreadyExists);
  EXPECT_EQ(access(path.c_str(), F_OK), 0);  // untouched
  EXPECT_FALSE(shm.exists());
  EXPECT_FALSE(shm.attach());  // not a shmring segment: a clear error, no crash
  EXPECT_NE(shm.error(), SharedMemoryError::kNoError);
  unlink(path.c_str());
}

TEST(SharedMemoryTest, CorruptHeaderIsRefusedWithoutCrashing) {
  const std::string key = unique_key("corrupt");
  SharedMemory creator(key);
  ASSERT_TRUE(creator.create(4096));
  const std::string path = "/dev/shm/" + creator.native_key();
  const int fd = open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  // user_size claims far more than the file holds.
  const std::uint64_t lie = std::uint64_t{1} << 40;
  ASSERT_EQ(pwrite(fd, &lie, sizeof lie, 24), static_cast<ssize_t>(sizeof lie));
  SharedMemory reader(key);
  EXPECT_FALSE(reader.attach());
  EXPECT_EQ(reader.error(), SharedMemoryError::kUnknownError);
  EXPECT_NE(reader.error_string().find("do not fit"), std::string::npos) << reader.error_string();
  // A wrong layout version is told apart.
  const std::uint32_t version = 99;
  const std::uint64_t size = 4096;
  ASSERT_EQ(pwrite(fd, &size, sizeof size, 24), static_cast<ssize_t>(sizeof size));
  ASSERT_EQ(pwrite(fd, &version, sizeof version, 12), static_cast<ssize_t>(sizeof version));
  EXPECT_FALSE(reader.attach());
  EXPECT_NE(reader.error_string().find("layout version 99"), std::string::npos);
  close(fd);
}

TEST(SharedMemoryTest, MoveTransfersTheAttachment) {
  const std::string key = unique_key("move");
  SharedMemory a(key);
  ASSERT_TRUE(a.create(10));
  SharedMemory b(std::move(a));
  EXPECT_TRUE(b.is_attached());
  EXPECT_EQ(b.size(), 10u);
  SharedMemory c;
  c = std::move(b);
  EXPECT_TRUE(c.is_attached());
  EXPECT_EQ(c.num_attachments(), 1);
}

TEST(SharedMemoryTest, LockSemaphoreIsRemovedWithTheSegment) {
  const std::string key = unique_key("semgone");
  SharedMemory shm(key);
  ASSERT_TRUE(shm.create(10));
  const auto* header = static_cast<const char*>(shm.const_data()) - 4096;
  int sem_id = 0;
  std::memcpy(&sem_id, header + 32, sizeof sem_id);
  EXPECT_TRUE(semaphore_exists(sem_id));
  shm.detach();
  EXPECT_FALSE(semaphore_exists(sem_id));
}

// --- Backends -------------------------------------------------------------------------------------

TEST(SharedMemoryFileBackendTest, AbsolutePathNativeKeySelectsFileBackend) {
  char dir_template[] = "/dev/shm/shmring_t_dir_XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string path = std::string(dir_template) + "/segment";
  SharedMemory a, b;
  a.set_native_key(path);
  EXPECT_EQ(a.backend(), Backend::kFile);
  ASSERT_TRUE(a.create(5000)) << a.error_string();
  EXPECT_EQ(access(path.c_str(), F_OK), 0);
  b.set_native_key(path);
  ASSERT_TRUE(b.attach());
  EXPECT_EQ(b.size(), 5000u);
  EXPECT_EQ(a.num_attachments(), 2);
  ASSERT_TRUE(b.lock());
  ASSERT_TRUE(b.unlock());
  a.detach();
  b.detach();
  EXPECT_NE(access(path.c_str(), F_OK), 0);  // last detach removed the file
  rmdir(dir_template);
}

TEST(SharedMemoryFileBackendTest, MissingDirectoryIsAnError) {
  SharedMemory shm;
  shm.set_native_key("/nonexistent-dir-for-shmring/segment");
  EXPECT_FALSE(shm.create(10));
  EXPECT_EQ(shm.error(), SharedMemoryError::kNotFound);
  shm.set_native_key("relative/path");
  EXPECT_EQ(shm.backend(), Backend::kPosix);
  EXPECT_FALSE(shm.create(10));
  EXPECT_EQ(shm.error(), SharedMemoryError::kKeyError);
}

TEST(SharedMemoryMemfdTest, AnonymousSealedSegment) {
  SharedMemory shm;
  shm.set_backend(Backend::kMemfd);
  ASSERT_TRUE(shm.create(8192)) << shm.error_string();
  EXPECT_GE(shm.fd(), 0);
  EXPECT_EQ(shm.num_attachments(), 1);
  // Sealed: it cannot shrink (or grow) under a reader.
  EXPECT_NE(ftruncate(shm.fd(), 100), 0);
  EXPECT_EQ(errno, EPERM);
  EXPECT_NE(ftruncate(shm.fd(), 1 << 20), 0);
  EXPECT_EQ(errno, EPERM);
  SharedMemory joiner;
  ASSERT_TRUE(joiner.attach_fd(shm.fd()));
  EXPECT_EQ(joiner.size(), 8192u);
  EXPECT_EQ(shm.num_attachments(), 2);
  static_cast<char*>(shm.data())[100] = 9;
  EXPECT_EQ(static_cast<const char*>(joiner.const_data())[100], 9);
  EXPECT_FALSE(joiner.attach());  // already attached
  SharedMemory by_name;
  by_name.set_backend(Backend::kMemfd);
  EXPECT_FALSE(by_name.attach());
  EXPECT_EQ(by_name.error(), SharedMemoryError::kNotFound);
}

TEST(SharedMemoryMemfdTest, HugeMemfdIsOutOfResources) {
  SharedMemory shm;
  shm.set_backend(Backend::kMemfd);
  EXPECT_FALSE(shm.create(std::size_t{1} << 44));
  EXPECT_EQ(shm.error(), SharedMemoryError::kOutOfResources);
}

TEST(SharedMemoryMemfdTest, BadDescriptorIsAnError) {
  SharedMemory shm;
  EXPECT_FALSE(shm.attach_fd(987654));
  EXPECT_EQ(shm.error(), SharedMemoryError::kNotFound);
}

TEST(SharedMemoryErrorTest, NamesAndStatusCodes) {
  EXPECT_EQ(to_string(SharedMemoryError::kOutOfResources), "kOutOfResources");
  EXPECT_EQ(to_status_code(SharedMemoryError::kInvalidSize), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(to_status_code(SharedMemoryError::kUnknownError), absl::StatusCode::kUnknown);
  EXPECT_EQ(to_status_code(SharedMemoryError::kNoError), absl::StatusCode::kOk);
}

}  // namespace
}  // namespace shmring
