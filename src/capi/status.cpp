#include "capi/status.hpp"

#include <new>

#include "emix/errors.hpp"

namespace emix::capi {

namespace {

emix_status classify(const std::exception_ptr& error, std::string* message) {
  try {
    std::rethrow_exception(error);
  } catch (const InvalidArgument& e) {
    *message = e.what();
    return EMIX_INVALID_ARGUMENT;
  } catch (const IoError& e) {
    *message = e.what();
    return EMIX_IO_ERROR;
  } catch (const NotAvailable& e) {
    *message = e.what();
    return EMIX_NOT_AVAILABLE;
  } catch (const OutOfMemory& e) {
    *message = e.what();
    return EMIX_OUT_OF_MEMORY;
  } catch (const NumericalError& e) {
    *message = e.what();
    return EMIX_NUMERICAL_ERROR;
  } catch (const CudaError& e) {
    *message = e.what();
    return EMIX_CUDA_ERROR;
  } catch (const MpiError& e) {
    *message = e.what();
    return EMIX_MPI_ERROR;
  } catch (const Cancelled& e) {
    *message = e.what();
    return EMIX_CANCELLED;
  } catch (const std::bad_alloc&) {
    *message = "out of host memory";
    return EMIX_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    *message = e.what();
    return EMIX_INTERNAL_ERROR;
  } catch (...) {
    *message = "unknown exception";
    return EMIX_INTERNAL_ERROR;
  }
}

}  // namespace

emix_status status_of(const std::exception_ptr& error, std::string* message) noexcept {
  try {
    return classify(error, message);
  } catch (...) {  // no memory for the message
    message->clear();
    return EMIX_OUT_OF_MEMORY;
  }
}

void throw_status(emix_status status, const std::string& message) {
  switch (status) {
    case EMIX_INVALID_ARGUMENT:
      throw InvalidArgument(message);
    case EMIX_IO_ERROR:
      throw IoError(message);
    case EMIX_NOT_AVAILABLE:
      throw NotAvailable(message);
    case EMIX_OUT_OF_MEMORY:
      throw OutOfMemory(message);
    case EMIX_NUMERICAL_ERROR:
      throw NumericalError(message);
    case EMIX_CUDA_ERROR:
      throw CudaError(message);
    case EMIX_MPI_ERROR:
      throw MpiError(message);
    case EMIX_CANCELLED:
      throw Cancelled(message);
    default:
      throw Error(message);
  }
}

}  // namespace emix::capi
