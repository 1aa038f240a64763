! Fits a three-component Gaussian mixture through emix's Fortran binding (emix.f90).

! A callback given to C lives in a module: an internal procedure (after "contains" in the
! program) that uses the program's variables is called through a trampoline on the stack, which
! makes the whole program's stack executable, and hardened systems refuse that.
module fit_callbacks
  use, intrinsic :: iso_c_binding
  use emix
  implicit none
  integer(c_int) :: iterations_seen = 0
  integer(c_int), volatile :: stop_requested = 0
contains
  ! Nonzero stops the fit: at the iteration user_data points to.
  integer(c_int) function stop_at_iteration(info, user_data) bind(c)
    type(emix_iteration_info), intent(in) :: info
    type(c_ptr), value :: user_data
    integer(c_int), pointer :: last
    call c_f_pointer(user_data, last)
    iterations_seen = iterations_seen + 1
    stop_at_iteration = merge(1_c_int, 0_c_int, info%iteration == last)
  end function stop_at_iteration

  ! Long calls of the thread that set it run this about every 50 ms; nonzero stops them. A
  ! program's SIGINT handler would set stop_requested.
  integer(c_int) function interrupt_requested(user_data) bind(c)
    type(c_ptr), value :: user_data
    interrupt_requested = stop_requested
  end function interrupt_requested
end module fit_callbacks

program fit_fortran
  use, intrinsic :: iso_c_binding
  use emix
  use fit_callbacks
  implicit none
  integer, parameter :: n = 3000
  ! One point per column: x(:, i) is point i, the row-major n x 2 matrix emix reads.
  real(c_double), target :: x(2, n), means(2, 3)
  real(c_double) :: centres(2, 3), u(2), score
  type(c_ptr) :: options, model, back, first, second, merged, stepped, stopped
  type(emix_fit_result) :: result, stopped_result
  type(c_ptr) :: selection
  type(emix_candidate) :: chosen
  integer(c_int) :: n_candidates, best, passes
  integer :: i, c, k, found
  integer(c_int64_t) :: size
  integer(c_int8_t), allocatable, target :: bytes(:)
  real(c_double) :: log_likelihood, weight_sum, stepped_means(2, 3)
  real(c_double) :: stepped_covariances(2, 2, 3), exact_covariances(2, 2, 3)
  real(c_double) :: bic, bic_of_weights
  real(c_double), target :: weights(n)
  type(c_ptr) :: about, exact
  integer(c_int) :: lost
  character(len=64) :: path = "fit_fortran_model.json"  ! blank-padded: emix trims it
  integer(c_int), target :: stop_at = 2

  centres = reshape([0d0, 0d0, 6d0, 0d0, 0d0, 6d0], [2, 3])
  call random_seed(put=[(7 + i, i = 1, 64)])
  do i = 1, n
    call random_number(u)  ! Box-Muller: two independent normals
    x(:, i) = centres(:, mod(i - 1, 3) + 1) + sqrt(-2 * log(1 - u(1))) * &
              [cos(6.283185307179586d0 * u(2)), sin(6.283185307179586d0 * u(2))]
  end do

  if (emix_gpu_available() == 0) print '(a)', 'no GPU: ' // emix_gpu_unavailable_text()
  call check(emix_set_interrupt_check(c_funloc(interrupt_requested), c_null_ptr))
  call check(emix_options_create(options))
  call check(emix_options_set_n_components(options, 3_c_int))
  call check(emix_options_set_covariance(options, EMIX_FULL))
  call check(emix_options_set_seed(options, 1_c_int64_t))
  call check(emix_fit(options, c_loc(x), int(n, c_int64_t), 2_c_int64_t, EMIX_FLOAT64, &
                      EMIX_HOST, c_null_ptr, model, result))
  print '(a, a, a, i0, a, f10.6)', 'emix ', emix_version_string(), ': iterations ', &
    result%n_iter, ', mean log-likelihood ', result%mean_log_likelihood

  do i = 0, result%n_warnings - 1
    print '(a)', 'warning: ' // emix_warning_text(model, int(i, c_int))
  end do
  call check(emix_model_get_means(model, means))
  found = 0
  do c = 1, 3
    do k = 1, 3
      if (norm2(means(:, k) - centres(:, c)) < 0.2d0) then
        found = found + 1
        exit
      end if
    end do
  end do

  call check(emix_model_write(model, path))
  call check(emix_model_read(path, back))
  call check(emix_score(back, c_null_ptr, c_loc(x), int(n, c_int64_t), 2_c_int64_t, &
                        EMIX_FLOAT64, EMIX_HOST, c_null_ptr, score))
  print '(a, i0, a, f10.6)', 'centres found: ', found, ' of 3; score read back: ', score

  ! One more EM step as map / reduce: the statistics of two halves, merged, sent through bytes
  ! (as between ranks), then the M-step; its log-likelihood totals are the fitted model's.
  call check(emix_accumulate(model, c_null_ptr, c_loc(x(1, 1)), int(n / 2, c_int64_t), &
                             2_c_int64_t, EMIX_FLOAT64, EMIX_HOST, c_null_ptr, first))
  call check(emix_accumulate(model, c_null_ptr, c_loc(x(1, n / 2 + 1)), &
                             int(n - n / 2, c_int64_t), 2_c_int64_t, EMIX_FLOAT64, EMIX_HOST, &
                             c_null_ptr, second))
  call check(emix_statistics_merge(first, second))
  call check(emix_statistics_serialize(first, c_null_ptr, 0_c_int64_t, size))
  allocate (bytes(size))
  call check(emix_statistics_serialize(first, c_loc(bytes), size, size))
  call check(emix_statistics_deserialize(c_loc(bytes), size, merged))
  call check(emix_statistics_totals(merged, log_likelihood, weight_sum))
  call check(emix_maximize(model, merged, c_null_ptr, stepped))
  print '(a, f10.6)', 'map / reduce: mean log-likelihood ', log_likelihood / weight_sum
  ! A step whose means moved far (by much more than their spread) loses the covariances' digits;
  ! the exact step then accumulates the same rows again about the new means and maximizes those.
  ! Here the means barely moved: both steps give the same covariances, to rounding.
  call check(emix_scatter_lost_digits(stepped, merged, lost))
  call check(emix_model_get_means(stepped, stepped_means))
  call check(emix_accumulate_about(model, c_null_ptr, stepped_means, c_loc(x), &
                                   int(n, c_int64_t), 2_c_int64_t, EMIX_FLOAT64, EMIX_HOST, &
                                   c_null_ptr, about))
  call check(emix_maximize(model, about, c_null_ptr, exact))
  call check(emix_model_get_covariances(stepped, stepped_covariances))
  call check(emix_model_get_covariances(exact, exact_covariances))
  call emix_model_destroy(exact)
  call emix_statistics_destroy(about)
  print '(a, i0, a, es9.2)', 'the step lost covariance digits: ', lost, &
    '; the exact step differs by ', maxval(abs(exact_covariances - stepped_covariances))
  if (lost /= 0 .or. maxval(abs(exact_covariances - stepped_covariances)) > 1d-9) error stop 1

  ! BIC counting each row by its weight: weights of 1 count every row once.
  weights = 1
  call check(emix_bic(model, c_null_ptr, c_loc(x), int(n, c_int64_t), 2_c_int64_t, &
                      EMIX_FLOAT64, EMIX_HOST, bic))
  call check(emix_bic_weighted(model, c_null_ptr, c_loc(x), int(n, c_int64_t), 2_c_int64_t, &
                               EMIX_FLOAT64, EMIX_HOST, c_loc(weights), bic_of_weights))
  print '(a, f12.3, a, f12.3)', 'BIC ', bic, ', of weights 1: ', bic_of_weights
  if (abs(bic_of_weights - bic) > 1d-9 * abs(bic)) error stop 1

  ! Choosing K: K = 1..5 with full and diagonal covariances, scored by BIC (covariance types
  ! as EMIX_FULL, EMIX_DIAG, ...; an empty array and 0 would try all four).
  call check(emix_select(options, [1_c_int, 2_c_int, 3_c_int, 4_c_int, 5_c_int], 5_c_int, &
                         [EMIX_FULL, EMIX_DIAG], 2_c_int, EMIX_CRITERION_BIC, c_loc(x), &
                         int(n, c_int64_t), 2_c_int64_t, EMIX_FLOAT64, EMIX_HOST, c_null_ptr, &
                         selection))
  call check(emix_selection_summary(selection, n_candidates, best, passes))
  call check(emix_selection_candidate(selection, best, chosen))
  print '(a, i0, a, i0, a, i0, a, f12.3)', 'select: ', n_candidates, ' candidates in ', &
    passes, ' passes; best by BIC: K = ', chosen%n_components, ', BIC ', chosen%bic
  call emix_selection_destroy(selection)
  if (chosen%n_components /= 3) error stop 1

  ! An iteration control stops a fit (a deadline, say): EMIX_CANCELLED and no model. With tol 0
  ! this fit would run its 100 iterations; the control stops it at iteration 2.
  call check(emix_options_set_tol(options, 0d0))
  call check(emix_options_set_iteration_control(options, c_funloc(stop_at_iteration), &
                                                c_loc(stop_at)))
  if (emix_fit(options, c_loc(x), int(n, c_int64_t), 2_c_int64_t, EMIX_FLOAT64, EMIX_HOST, &
               c_null_ptr, stopped, stopped_result) /= EMIX_CANCELLED .or. c_associated(stopped)) then
    print '(a)', 'the iteration control did not stop the fit: ' // emix_error_message()
    error stop 1
  end if
  print '(a, i0, a)', 'stopped after ', iterations_seen, ' calls of the control: ' // &
    emix_error_message()

  call emix_model_destroy(stepped)
  call emix_statistics_destroy(merged)
  call emix_statistics_destroy(second)
  call emix_statistics_destroy(first)
  call emix_model_destroy(back)
  call emix_model_destroy(model)
  call emix_options_destroy(options)
  call check(emix_set_interrupt_check(c_null_funptr, c_null_ptr))
  if (found /= 3 .or. abs(score - result%mean_log_likelihood) > 1d-9) error stop 1
  if (weight_sum /= n .or. abs(log_likelihood / n - result%mean_log_likelihood) > 1d-9) then
    error stop 1
  end if

contains

  subroutine check(status)
    integer(c_int), intent(in) :: status
    if (status /= EMIX_OK) then
      print '(a)', 'emix: ' // emix_error_message()
      error stop 1
    end if
  end subroutine check

end program fit_fortran
