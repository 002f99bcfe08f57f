#pragma once
// The one error type of the pool core. Its message always starts with the field it is about
// ("spec.autoscaling.minReplicas: must be <= maxReplicas (3 > 2)"), because it ends up verbatim in the
// pool's Degraded condition and in an Event, where the user has nothing else to go on.
#include <stdexcept>

namespace gasoline::op::pool {

class SpecError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace gasoline::op::pool
