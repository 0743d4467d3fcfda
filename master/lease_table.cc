#include "master/lease_table.h"

namespace prs::master {

void LeaseTable::Reset(const std::vector<std::pair<int64_t, int32_t>>& pending) {
  pending_.assign(pending.begin(), pending.end());
  leased_.clear();
}

std::vector<LeaseTable::Taken> LeaseTable::Clear() {
  std::vector<Taken> dropped(leased_.begin(), leased_.end());
  pending_.clear();
  leased_.clear();
  return dropped;
}

std::vector<LeaseTable::Granted> LeaseTable::Grant(
    const std::string& agent_id, int max, absl::Time now, int64_t run,
    const std::function<std::string()>& new_lease_id) {
  std::vector<Granted> granted;
  while (static_cast<int>(granted.size()) < max && !pending_.empty()) {
    auto [task_id, tries] = pending_.front();
    pending_.pop_front();
    Lease lease;
    lease.lease_id = new_lease_id();
    lease.agent_id = agent_id;
    lease.attempt = tries + 1;
    lease.granted = now;
    lease.run = run;
    leased_[task_id] = lease;
    granted.push_back({task_id, std::move(lease)});
  }
  return granted;
}

Lease* LeaseTable::Find(int64_t task_id, const std::string& lease_id, const std::string* agent_id) {
  auto it = leased_.find(task_id);
  if (it == leased_.end() || it->second.lease_id != lease_id) return nullptr;
  if (agent_id != nullptr && it->second.agent_id != *agent_id) return nullptr;
  return &it->second;
}

std::optional<Lease> LeaseTable::Take(int64_t task_id, const std::string& lease_id,
                                      const std::string* agent_id) {
  if (Find(task_id, lease_id, agent_id) == nullptr) return std::nullopt;
  auto it = leased_.find(task_id);
  std::optional<Lease> lease(std::move(it->second));
  leased_.erase(it);
  return lease;
}

std::vector<LeaseTable::Taken> LeaseTable::TakeAllOf(const std::string& agent_id) {
  std::vector<Taken> taken;
  for (auto it = leased_.begin(); it != leased_.end();) {
    if (it->second.agent_id != agent_id) {
      ++it;
      continue;
    }
    taken.emplace_back(it->first, std::move(it->second));
    leased_.erase(it++);
  }
  return taken;
}

std::vector<LeaseTable::Taken> LeaseTable::TakeUnheld(const std::string& agent_id,
                                                      const std::set<std::string>& held,
                                                      absl::Time cutoff) {
  std::vector<Taken> taken;
  for (auto it = leased_.begin(); it != leased_.end();) {
    const Lease& l = it->second;
    if (l.agent_id != agent_id || held.count(l.lease_id) > 0 || l.granted > cutoff) {
      ++it;
      continue;
    }
    taken.emplace_back(it->first, std::move(it->second));
    leased_.erase(it++);
  }
  return taken;
}

std::set<std::string> LeaseTable::holders() const {
  std::set<std::string> out;
  for (const auto& [task_id, lease] : leased_) out.insert(lease.agent_id);
  return out;
}

}  // namespace prs::master
