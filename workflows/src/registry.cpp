#include "ringback/workflows/registry.hpp"

#include "ringback/engine/executors.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <system_error>
#include <utility>

namespace ringback::workflows {

namespace fs = std::filesystem;

/// Builds sets; the only code that writes a `workflow_set`.
struct workflow_set_access {
  static set_load_result load(const std::string& dir,
                              const std::vector<std::string>& tenant_ids,
                              const language& lang, std::uint64_t generation);

  static void link(workflow_set& set);
};

namespace {

bool ends_with(std::string_view x, std::string_view suffix) {
  return x.size() >= suffix.size()
         && x.substr(x.size() - suffix.size()) == suffix;
}

bool has_errors(const std::vector<diagnostic>& xs) {
  return std::any_of(xs.begin(), xs.end(), [](const diagnostic& d) {
    return d.level == severity::error;
  });
}

diagnostic folder_error(std::string file, std::string message) {
  diagnostic d;
  d.file = std::move(file);
  d.message = std::move(message);
  return d;
}

std::string display(std::string_view tenant, std::string_view name) {
  if (tenant.empty())
    return std::string(name);
  std::string out(tenant);
  out += '/';
  out += name;
  return out;
}

} // namespace

// -- workflow_set -------------------------------------------------------------

std::vector<workflow_ptr>
workflow_set::for_trigger(std::string_view tenant_id,
                          std::string_view trigger) const {
  auto i = effective_.find(tenant_id);
  const auto& xs = i != effective_.end() ? i->second : global_;
  std::vector<workflow_ptr> out;
  for (const auto& wf : xs)
    if (wf->trigger == trigger)
      out.push_back(wf);
  return out;
}

workflow_ptr workflow_set::find(std::string_view tenant_id,
                                std::string_view name) const {
  auto i = effective_.find(tenant_id);
  const auto& xs = i != effective_.end() ? i->second : global_;
  for (const auto& wf : xs)
    if (wf->name == name)
      return wf;
  return nullptr;
}

std::vector<workflow_ptr> workflow_set::all() const {
  std::vector<workflow_ptr> out = global_;
  for (const auto& [id, xs] : own_)
    out.insert(out.end(), xs.begin(), xs.end());
  return out;
}

std::string workflow_set::tenant_of(const workflow_ptr& wf) const {
  auto i = tenant_of_.find(wf.get());
  return i != tenant_of_.end() ? i->second : std::string();
}

std::vector<std::string> workflow_set::tenants() const {
  std::vector<std::string> out;
  for (const auto& [id, xs] : own_)
    out.push_back(id);
  return out;
}

void workflow_set_access::link(workflow_set& set) {
  for (const auto& entry : set.own_) {
    // Not a structured binding: the lambda below captures `own` (clang 14).
    const auto& id = entry.first;
    const auto& own = entry.second;
    const bool answers_calls
      = std::any_of(own.begin(), own.end(), [](const workflow_ptr& wf) {
          return wf->trigger == "call.incoming";
        });
    auto own_named = [&](const std::string& name) -> workflow_ptr {
      for (const auto& wf : own)
        if (wf->name == name)
          return wf;
      return nullptr;
    };
    std::vector<workflow_ptr> eff;
    std::set<const workflow*> placed;
    for (const auto& g : set.global_) {
      if (auto mine = own_named(g->name)) {
        eff.push_back(mine);
        placed.insert(mine.get());
      } else if (!(answers_calls && g->trigger == "call.incoming")) {
        eff.push_back(g);
      }
    }
    for (const auto& wf : own) {
      if (placed.count(wf.get()) == 0)
        eff.push_back(wf);
      set.tenant_of_.emplace(wf.get(), id);
    }
    set.effective_.emplace(id, std::move(eff));
  }
}

set_load_result
workflow_set_access::load(const std::string& dir,
                          const std::vector<std::string>& tenant_ids,
                          const language& lang, std::uint64_t generation) {
  set_load_result result;
  auto set = std::make_shared<workflow_set>();
  set->generation_ = generation;
  auto global = load_directory(dir, lang);
  result.diagnostics = global.diagnostics();
  set->global_ = global.workflows();
  const auto tenants_dir = fs::path(dir) / "tenants";
  std::error_code ec;
  const auto status = fs::status(tenants_dir, ec);
  if (ec && ec != std::errc::no_such_file_or_directory
      && ec != std::errc::not_a_directory) { // reported for `dir` already
    result.diagnostics.push_back(folder_error(
      tenants_dir.string(), "cannot read directory: " + ec.message()));
  } else if (fs::exists(status) && !fs::is_directory(status)) {
    result.diagnostics.push_back(folder_error(
      tenants_dir.string(), "expected a folder holding one folder per tenant "
                            "(tenants/<tenant id>/), got a file"));
  } else if (fs::exists(status)) {
    std::vector<std::string> folders;
    std::vector<std::string> stray;
    fs::directory_iterator it(tenants_dir, ec);
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
      auto name = it->path().filename().string();
      if (name.empty() || name[0] == '.')
        continue;
      std::error_code type_ec;
      if (fs::is_directory(it->path(), type_ec))
        folders.push_back(name);
      else if (ends_with(name, ".yaml") && !ends_with(name, ".test.yaml"))
        stray.push_back(name);
    }
    if (ec)
      result.diagnostics.push_back(folder_error(
        tenants_dir.string(), "cannot read directory: " + ec.message()));
    std::sort(folders.begin(), folders.end());
    std::sort(stray.begin(), stray.end());
    for (const auto& name : stray)
      result.diagnostics.push_back(
        folder_error((tenants_dir / name).string(),
                     "a workflow directly in tenants/ is not loaded; put it "
                     "in tenants/<tenant id>/ or in the folder above for "
                     "every tenant"));
    for (const auto& id : folders) {
      const auto path = (tenants_dir / id).string();
      if (std::find(tenant_ids.begin(), tenant_ids.end(), id)
          == tenant_ids.end()) {
        std::string msg = "unknown tenant '" + id + "'"
                          + did_you_mean(id, tenant_ids);
        if (tenant_ids.empty())
          msg += "; no tenants are configured";
        else
          msg += "; the tenants are " + join(tenant_ids);
        result.diagnostics.push_back(folder_error(path, std::move(msg)));
        continue;
      }
      auto own = load_directory(path, lang);
      for (const auto& d : own.diagnostics())
        result.diagnostics.push_back(d);
      set->own_.emplace(id, own.workflows());
    }
  }
  if (has_errors(result.diagnostics))
    return result;
  link(*set);
  result.value = std::move(set);
  return result;
}

set_load_result load_workflow_set(const std::string& dir,
                                  const std::vector<std::string>& tenant_ids,
                                  const language& lang) {
  try {
    return workflow_set_access::load(dir, tenant_ids, lang, 1);
  } catch (const std::exception& e) {
    set_load_result result;
    result.diagnostics.push_back(
      folder_error(dir, std::string("cannot load workflows: ") + e.what()));
    return result;
  }
}

// -- workflow_registry --------------------------------------------------------

workflow_registry::workflow_registry(std::string dir,
                                     std::vector<std::string> tenant_ids,
                                     const language& lang)
  : dir_(std::move(dir)),
    tenant_ids_(std::move(tenant_ids)),
    lang_(lang),
    current_(std::make_shared<const workflow_set>()) {
  // nop
}

workflow_registry::~workflow_registry() {
  stop();
}

set_load_result
workflow_registry::load_locked(std::vector<std::string>* changes) {
  auto old = current();
  set_load_result result;
  try {
    result = workflow_set_access::load(dir_, tenant_ids_, lang_,
                                       old->generation() + 1);
  } catch (const std::exception& e) {
    // std::bad_alloc and the like: report, keep the old set.
    result.value.reset();
    result.diagnostics.push_back(
      folder_error(dir_, std::string("cannot load workflows: ") + e.what()));
  }
  if (!result.value)
    return result;
  const auto fresh = result.value->all();
  if (changes != nullptr) {
    std::map<std::pair<std::string, std::string>, std::string> before;
    for (const auto& wf : old->all())
      before.emplace(std::pair{old->tenant_of(wf), wf->name}, wf->version);
    for (const auto& wf : fresh) {
      auto key = std::pair{result.value->tenant_of(wf), wf->name};
      auto i = before.find(key);
      if (i == before.end())
        changes->push_back(display(key.first, key.second) + " (new)");
      else if (i->second != wf->version)
        changes->push_back(display(key.first, key.second));
      if (i != before.end())
        before.erase(i);
    }
    for (const auto& [key, version] : before)
      changes->push_back(display(key.first, key.second) + " (removed)");
  }
  std::lock_guard<std::mutex> guard(state_mutex_);
  for (const auto& wf : fresh)
    versions_.insert_or_assign(
      version_key{result.value->tenant_of(wf), wf->name, wf->version}, wf);
  current_ = result.value;
  return result;
}

set_load_result workflow_registry::load() {
  std::lock_guard<std::mutex> guard(load_mutex_);
  return load_locked(nullptr);
}

bool workflow_registry::reload(const registry_log& log) {
  std::vector<std::string> changes;
  set_load_result result;
  std::uint64_t kept = 0;
  {
    std::lock_guard<std::mutex> guard(load_mutex_);
    result = load_locked(&changes);
    kept = current()->generation();
  }
  if (!log)
    return result.ok();
  for (const auto& d : result.diagnostics)
    log(to_string(d.level), to_string(d));
  if (!result.ok()) {
    log("error", kept == 0 ? std::string("rejected new workflows; none are "
                                         "loaded yet")
                           : "rejected new workflows, keeping generation "
                               + std::to_string(kept));
    return false;
  }
  std::string line = "reloaded workflows: " + std::to_string(changes.size())
                     + " changed";
  if (!changes.empty())
    line += " (" + join(changes) + ")";
  line += ", generation " + std::to_string(result.value->generation());
  log("info", line);
  return true;
}

std::shared_ptr<const workflow_set> workflow_registry::current() const {
  std::lock_guard<std::mutex> guard(state_mutex_);
  return current_;
}

workflow_ptr workflow_registry::find_version(std::string_view tenant_id,
                                             std::string_view name,
                                             std::string_view version) const {
  using view_key
    = std::tuple<std::string_view, std::string_view, std::string_view>;
  std::lock_guard<std::mutex> guard(state_mutex_);
  if (!tenant_id.empty()) {
    auto i = versions_.find(view_key{tenant_id, name, version});
    if (i != versions_.end())
      return i->second;
  }
  auto i = versions_.find(view_key{std::string_view(), name, version});
  return i != versions_.end() ? i->second : nullptr;
}

// -- watching -----------------------------------------------------------------

namespace {

/// What the watcher compares between two polls: an added or removed file or
/// folder, a file's size, inode (replaced by a rename), modification and
/// change times, and its content's hash: file times tick with the kernel's
/// coarse clock (a few milliseconds), so two saves of the same size within
/// one tick would otherwise look the same.
struct entry_stamp {
  std::string path;
  bool folder = false;
  std::int64_t size = 0;
  std::int64_t inode = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;
  std::string hash;

  friend bool operator==(const entry_stamp& a, const entry_stamp& b) {
    return a.path == b.path && a.folder == b.folder && a.size == b.size
           && a.inode == b.inode && a.mtime_ns == b.mtime_ns
           && a.ctime_ns == b.ctime_ns && a.hash == b.hash;
  }
};

/// Workflow files are small (the loader rejects more than 1 MiB): hash
/// those; a bigger file is compared by its other stamps only.
constexpr std::int64_t max_hashed_bytes = std::int64_t{1024} * 1024;

std::string hash_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return "unreadable";
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  return content_hash(text);
}

using snapshot = std::vector<entry_stamp>;

std::int64_t nanoseconds(const timespec& t) {
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000
         + static_cast<std::int64_t>(t.tv_nsec);
}

void add_stamp(const fs::path& path, bool folder, snapshot& out) {
  entry_stamp s;
  s.path = path.string();
  s.folder = folder;
  struct stat st {};
  if (::stat(s.path.c_str(), &st) == 0) {
    s.inode = static_cast<std::int64_t>(st.st_ino);
    // A folder's times change with every editor's swap file in it: only the
    // workflow files' own stamps count.
    if (!folder) {
      s.size = static_cast<std::int64_t>(st.st_size);
      s.mtime_ns = nanoseconds(st.st_mtim);
      s.ctime_ns = nanoseconds(st.st_ctim);
      if (s.size <= max_hashed_bytes)
        s.hash = hash_file(s.path);
    }
  } else {
    s.size = -1; // vanished between listing and stat: seen again next poll
  }
  out.push_back(std::move(s));
}

void stamp_folder(const fs::path& dir, snapshot& out, bool with_tenants) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (name.empty() || name[0] == '.')
      continue;
    std::error_code type_ec;
    const bool folder = it->is_directory(type_ec);
    if (folder && with_tenants && name == "tenants") {
      add_stamp(it->path(), true, out);
      std::error_code sub_ec;
      fs::directory_iterator t(it->path(), sub_ec);
      for (; !sub_ec && t != fs::directory_iterator(); t.increment(sub_ec)) {
        const auto id = t->path().filename().string();
        if (id.empty() || id[0] == '.')
          continue;
        std::error_code t_ec;
        if (t->is_directory(t_ec)) {
          add_stamp(t->path(), true, out);
          stamp_folder(t->path(), out, false);
        } else if (ends_with(id, ".yaml")) {
          add_stamp(t->path(), false, out);
        }
      }
    } else if (!folder && ends_with(name, ".yaml")
               && !ends_with(name, ".test.yaml")) {
      add_stamp(it->path(), false, out);
    }
  }
  if (ec) {
    entry_stamp s;
    s.path = dir.string() + ": " + ec.message();
    out.push_back(std::move(s));
  }
}

snapshot take_snapshot(const std::string& dir) {
  snapshot out;
  stamp_folder(fs::path(dir), out, true);
  std::sort(out.begin(), out.end(),
            [](const entry_stamp& a, const entry_stamp& b) {
              return a.path < b.path;
            });
  return out;
}

} // namespace

void workflow_registry::watch(std::chrono::milliseconds interval,
                              registry_log log) {
  stop();
  {
    std::lock_guard<std::mutex> guard(watch_mutex_);
    stopping_ = false;
  }
  interval = std::max(interval, std::chrono::milliseconds(10));
  // The first look before returning: a change made right after `watch`
  // returns must count as one.
  auto first = std::make_shared<snapshot>();
  try {
    *first = take_snapshot(dir_);
  } catch (const std::exception&) {
    // The thread looks again and reports.
  }
  watcher_ = std::thread([this, interval, first, log = std::move(log)] {
    engine::name_this_thread("rb.watch");
    auto report = [&](const std::string& line) noexcept {
      try {
        if (log)
          log("error", line);
      } catch (...) {
        // A throwing log callback must not end the watcher.
      }
    };
    snapshot last = std::move(*first);
    bool pending = false;
    std::unique_lock<std::mutex> lock(watch_mutex_);
    while (!stopping_) {
      watch_cv_.wait_for(lock, interval, [this] { return stopping_; });
      if (stopping_)
        break;
      lock.unlock();
      try {
        auto now = take_snapshot(dir_);
        if (!(now == last)) {
          // Still changing: wait for one quiet interval before reloading.
          last = std::move(now);
          pending = true;
        } else if (pending) {
          pending = false;
          reload(log);
        }
      } catch (const std::exception& e) {
        report(std::string("workflow watcher: ") + e.what());
      } catch (...) {
        report("workflow watcher: unknown error");
      }
      lock.lock();
    }
  });
}

void workflow_registry::stop() {
  {
    std::lock_guard<std::mutex> guard(watch_mutex_);
    stopping_ = true;
  }
  watch_cv_.notify_all();
  if (watcher_.joinable())
    watcher_.join();
}

} // namespace ringback::workflows
