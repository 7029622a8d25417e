#pragma once

#include "ringback/workflows/diagnostic.hpp"
#include "ringback/workflows/language.hpp"
#include "ringback/workflows/loader.hpp"
#include "ringback/workflows/model.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace ringback::workflows {

/// Everything loaded from one workflows folder at one moment: the global
/// catalog and each tenant's. Immutable once loaded; shared by
/// `std::shared_ptr<const workflow_set>` and safe to read from any thread.
///
/// Folder layout:
/// ```
/// <dir>/*.yaml                   global workflows (every tenant runs them)
/// <dir>/tenants/<tenant id>/*.yaml   one tenant's own workflows
/// ```
/// A tenant's workflow replaces the global one of the same name; a tenant's
/// `call.incoming` workflow also replaces the global `call.incoming` one,
/// whatever their names (a call gets one answer). `*.test.yaml` files are
/// never loaded.
class workflow_set {
public:
  /// An empty set (no workflows, generation 0).
  workflow_set() = default;

  /// The workflows a tenant runs for a trigger: the global ones in file order
  /// (each replaced in place by the tenant's workflow of the same name, if
  /// any), then the tenant's additions in file order; when the tenant has a
  /// `call.incoming` workflow, the global `call.incoming` one is left out.
  /// A tenant without a folder gets the global workflows.
  std::vector<workflow_ptr> for_trigger(std::string_view tenant_id,
                                        std::string_view trigger) const;

  /// The workflow `name` as `tenant_id` sees it (its own, else the global
  /// one, unless a tenant's `call.incoming` displaces it); null if none.
  workflow_ptr find(std::string_view tenant_id, std::string_view name) const;

  /// Every loaded workflow: the global ones, then each tenant's (tenants in
  /// id order), each in file order. For storing versions.
  std::vector<workflow_ptr> all() const;

  /// The tenant whose folder `wf` came from; "" for a global workflow and for
  /// a workflow that is not part of this set.
  std::string tenant_of(const workflow_ptr& wf) const;

  /// The tenants that have a folder, in id order.
  std::vector<std::string> tenants() const;

  /// 1, 2, ... per successful load of a `workflow_registry`; 1 for a set
  /// from `load_workflow_set`; 0 for an empty set.
  std::uint64_t generation() const {
    return generation_;
  }

private:
  friend struct workflow_set_access;

  std::vector<workflow_ptr> global_;
  /// Each tenant's own workflows, in file order.
  std::map<std::string, std::vector<workflow_ptr>, std::less<>> own_;
  /// What each tenant with a folder runs (see `for_trigger`).
  std::map<std::string, std::vector<workflow_ptr>, std::less<>> effective_;
  std::unordered_map<const workflow*, std::string> tenant_of_;
  std::uint64_t generation_ = 0;
};

/// The outcome of `load_workflow_set`.
struct set_load_result {
  /// Set iff no diagnostic is an error.
  std::shared_ptr<const workflow_set> value;
  /// Problems of every file and folder, global ones first, then each tenant
  /// folder's (in id order); each file's in position order.
  std::vector<diagnostic> diagnostics;

  bool ok() const {
    return value != nullptr;
  }
};

/// Loads `dir` (its `*.yaml` files, not `*.test.yaml`, as `load_directory`)
/// and each `dir/tenants/<id>/` folder. A tenant folder for an id not in
/// `tenant_ids` is an error (a typo would silently do nothing), and so is a
/// `*.yaml` file directly in `dir/tenants/`. Reports the diagnostics of every
/// file at once; no set while any of them is an error. Never throws.
set_load_result load_workflow_set(const std::string& dir,
                                  const std::vector<std::string>& tenant_ids,
                                  const language& lang = default_language());

/// Receives log lines: `level` is "info", "warning" or "error".
using registry_log
  = std::function<void(std::string_view level, std::string_view line)>;

/// Thread-safe holder of the current `workflow_set` plus every workflow
/// version loaded in this process, so that a run waiting since an older
/// version resumes on the version it started with. Old versions are never
/// dropped: each is one compiled file, and a process sees few edits.
///
/// All member functions may be called from any thread. Reloads are
/// serialized; readers never wait for a reload's file reading, only for a
/// pointer copy.
class workflow_registry {
public:
  /// `lang` must outlive the registry (the default one lives forever).
  workflow_registry(std::string dir, std::vector<std::string> tenant_ids,
                    const language& lang = default_language());

  /// Stops the watcher (see `stop`).
  ~workflow_registry();

  workflow_registry(const workflow_registry&) = delete;
  workflow_registry& operator=(const workflow_registry&) = delete;

  /// Loads the folder; on success makes it the current set (the next
  /// generation) and returns it in `value`; on failure keeps the current set
  /// (if any) and returns the diagnostics. For start-up, where a failure is
  /// fatal; `reload` is the logging variant for a running process.
  set_load_result load();

  /// Reloads; on success swaps the new set in atomically and returns true; on
  /// failure keeps the old set and returns false. `log` gets one line per
  /// diagnostic (at its severity) and a summary: "reloaded workflows: 2
  /// changed (...)" at "info", or "rejected new workflows, keeping generation
  /// 3" at "error". `log` may be empty. Never throws (exceptions thrown by
  /// `log` excepted).
  bool reload(const registry_log& log);

  /// The current set; an empty set (generation 0) before the first
  /// successful load. Never null. Cheap: called per event.
  std::shared_ptr<const workflow_set> current() const;

  /// A workflow by name and version, as `tenant_id` ran it: the tenant's own
  /// or a global one, from the current set or from any set loaded before in
  /// this process (kept so that waiting runs finish on their version). Null
  /// if never loaded in this process: the host then compiles the stored
  /// source with `load_string`.
  workflow_ptr find_version(std::string_view tenant_id, std::string_view name,
                            std::string_view version) const;

  /// Starts a thread that polls the folder every `interval` (at least 10 ms)
  /// and calls `reload(log)` once a change has stayed quiet for one more
  /// interval (an editor's save is several writes). It looks at the `*.yaml`
  /// files (not `*.test.yaml`, not hidden ones) of the folder and of each
  /// `tenants/<id>/` folder, and at which tenant folders exist: names, sizes,
  /// inodes, modification and change times, and content hashes (file times
  /// are only as fine as the kernel's tick). A rejected change is not retried
  /// until the files change again. The first look happens before `watch`
  /// returns. A watcher already running is stopped first. The thread never
  /// throws: errors go to `log` at "error". Polling rather than inotify: it
  /// sees files replaced by renames, new tenant folders and network file
  /// systems alike, at the cost of reading the (small) files each interval.
  void watch(std::chrono::milliseconds interval, registry_log log);

  /// Stops and joins the watcher thread, if any. Idempotent. Must not be
  /// called from the `log` callback of the watcher.
  void stop();

  const std::string& dir() const {
    return dir_;
  }

private:
  /// (tenant id or "" for global, name, version).
  using version_key = std::tuple<std::string, std::string, std::string>;

  set_load_result load_locked(std::vector<std::string>* changes);

  const std::string dir_;
  const std::vector<std::string> tenant_ids_;
  const language& lang_;

  /// Held for a whole load, so that generations are handed out in order.
  std::mutex load_mutex_;

  /// Guards `current_` and `versions_`; held only to copy or swap.
  mutable std::mutex state_mutex_;
  std::shared_ptr<const workflow_set> current_;
  std::map<version_key, workflow_ptr, std::less<>> versions_;

  std::mutex watch_mutex_;
  std::condition_variable watch_cv_;
  bool stopping_ = false;
  std::thread watcher_;
};

} // namespace ringback::workflows
