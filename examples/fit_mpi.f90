! An MPI-distributed fit from Fortran: each rank makes its share of three 2-D clusters and every
! rank receives the same model.   mpiexec -n 3 ./fit_mpi_fortran
! (Open MPI also wants --allow-run-as-root when run as root, and --oversubscribe on a machine
! with fewer than 3 cores.)
program fit_mpi_fortran
  use, intrinsic :: iso_c_binding
  use mpi
  use emix
  implicit none
  integer, parameter :: n = 3000
  real(c_double), target :: x(2, n), means(2, 3)
  real(c_double) :: centres(2, 3), u(2)
  type(c_ptr) :: options, model, selection = c_null_ptr
  type(emix_fit_result) :: result
  type(emix_candidate) :: chosen
  integer(c_int) :: n_candidates, best, passes
  integer(c_int64_t) :: first, count
  integer :: i, c, k, found, rank, size, ierr, ok, all_ok

  call mpi_init(ierr)
  call mpi_comm_rank(MPI_COMM_WORLD, rank, ierr)
  call mpi_comm_size(MPI_COMM_WORLD, size, ierr)

  ! Every rank draws the same points (one per column) and passes its shard of them.
  centres = reshape([0d0, 0d0, 6d0, 0d0, 0d0, 6d0], [2, 3])
  call random_seed(put=[(7 + i, i = 1, 64)])
  do i = 1, n
    call random_number(u)
    x(:, i) = centres(:, mod(i - 1, 3) + 1) + sqrt(-2 * log(1 - u(1))) * &
              [cos(6.283185307179586d0 * u(2)), sin(6.283185307179586d0 * u(2))]
  end do
  ok = 0
  if (emix_mpi_shard(int(n, c_int64_t), int(rank, c_int), int(size, c_int), first, count) &
      == EMIX_OK .and. emix_options_create(options) == EMIX_OK) then
    ok = 1
    if (emix_options_set_n_components(options, 3_c_int) /= EMIX_OK) ok = 0
    if (emix_options_set_device(options, EMIX_DEVICE_CPU) /= EMIX_OK) ok = 0
    if (emix_options_set_seed(options, 1_c_int64_t) /= EMIX_OK) ok = 0
    ! Rows first+1 .. first+count (1-based) are columns of x: pass the address of the first.
    if (emix_fit_mpi_f(int(MPI_COMM_WORLD, c_int), options, c_loc(x(1, first + 1)), count, &
                       2_c_int64_t, EMIX_FLOAT64, EMIX_HOST, c_null_ptr, model, result) &
        /= EMIX_OK) then
      print '(a, i0, a, a)', 'rank ', rank, ': ', emix_error_message()
      ok = 0
    end if
  end if
  if (ok == 1) then
    if (emix_model_get_means(model, means) /= EMIX_OK) ok = 0
    found = 0
    do c = 1, 3
      do k = 1, 3
        if (norm2(means(:, k) - centres(:, c)) < 0.2d0) then
          found = found + 1
          exit
        end if
      end do
    end do
    if (found /= 3) ok = 0
    if (rank == 0) print '(i0, a, i0, a, f10.6, a, i0, a)', size, ' ranks: ', result%n_iter, &
      ' iterations, mean log-likelihood ', result%mean_log_likelihood, ', centres found ', &
      found, ' of 3'
    call emix_model_destroy(model)
    ! Choosing K over the ranks' rows (all four covariance types: an empty array and 0).
    if (emix_select_mpi_f(int(MPI_COMM_WORLD, c_int), options, [1_c_int, 2_c_int, 3_c_int], &
                          3_c_int, [integer(c_int) ::], 0_c_int, EMIX_CRITERION_BIC, &
                          c_loc(x(1, first + 1)), count, 2_c_int64_t, EMIX_FLOAT64, EMIX_HOST, &
                          c_null_ptr, selection) /= EMIX_OK) then
      print '(a, i0, a, a)', 'rank ', rank, ': ', emix_error_message()
      ok = 0
    else if (emix_selection_summary(selection, n_candidates, best, passes) /= EMIX_OK .or. &
             emix_selection_candidate(selection, best, chosen) /= EMIX_OK) then
      ok = 0
    else
      if (chosen%n_components /= 3) ok = 0
      if (rank == 0) print '(a, i0, a, i0)', 'select: ', n_candidates, &
        ' candidates; best by BIC: K = ', chosen%n_components
    end if
    call emix_selection_destroy(selection)
  end if
  call emix_options_destroy(options)
  call mpi_allreduce(ok, all_ok, 1, MPI_INTEGER, MPI_MIN, MPI_COMM_WORLD, ierr)
  call mpi_finalize(ierr)
  if (all_ok /= 1) error stop 1
end program fit_mpi_fortran
